import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Element, xml, serialize, cloneElement, escapeText } from '../../src/xml/element.ts';
import { parseElement } from '../../src/xml/parse.ts';

describe('element', () => {
  it('serializes with escaping of text and attributes', () => {
    const el = xml('message', { to: 'a@b', title: `"it's" <a&b>` }, xml('body', null, 'x < y & z > w'), xml('empty'));
    assert.equal(serialize(el), `<message to="a@b" title="&quot;it&apos;s&quot; &lt;a&amp;b&gt;"><body>x &lt; y &amp; z &gt; w</body><empty/></message>`);
  });

  it('round-trips through the parser', () => {
    const text = `<message to="a@b" type="chat"><body>a &amp; b</body><x xmlns="urn:x"><y z="1"/></x></message>`;
    const el = parseElement(text);
    assert.ok(el);
    assert.equal(serialize(el), text);
    assert.equal(el.getChild('x', 'urn:x')?.getChild('y')?.attrs.z, '1');
    assert.equal(el.getChildText('body'), 'a & b');
  });

  it('serializes and clones a tree 200,000 levels deep without overflowing the stack', () => {
    const root = new Element('a');
    let cur = root;
    for (let i = 0; i < 200_000; i++) {
      const next = new Element('a');
      cur.children.push(next);
      cur = next;
    }
    cur.children.push('leaf');
    const s = serialize(root);
    assert.equal(s.length, 200_001 * 7 + 4);
    const copy = cloneElement(root);
    assert.equal(serialize(copy), s);
    assert.notEqual(copy.children[0], root.children[0]);
  });

  it('clones deeply: changing the copy leaves the original alone', () => {
    const el = xml('iq', { id: '1' }, xml('query', { xmlns: 'urn:q' }, xml('item', { jid: 'x' })));
    const copy = el.clone();
    (copy.getChild('query')?.getChild('item') as Element).attrs.jid = 'y';
    assert.equal(el.getChild('query')?.getChild('item')?.attrs.jid, 'x');
  });

  it('escapes text only where needed', () => {
    assert.equal(escapeText('plain'), 'plain');
    assert.equal(escapeText('<&>'), '&lt;&amp;&gt;');
  });
});
