// The XEP-0313 §4.1 query form (XEP-0004 data forms), with XEP-0082 timestamps and XEP-0431 full-text search.
import { StanzaError } from '../../core/errors.ts';
import type { ArchiveFilter } from '../../storage/types.ts';
import { xml, type Element } from '../../xml/element.ts';
import { Jid } from '../../xmpp/jid.ts';
import { FULLTEXT_FIELD, MAM_NS } from './ns.ts';

/** XEP-0082 DateTime: CCYY-MM-DDThh:mm:ss[.sss]TZD. */
const DATETIME = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$/;

/** Milliseconds since the epoch; bad-request for anything that is not an XEP-0082 DateTime. */
export function parseDateTime(text: string, field: string): number {
  const m = DATETIME.exec(text.trim());
  // Fractions beyond milliseconds are cut, not rounded: 'start' then still includes the millisecond it names.
  const ms = m ? Date.parse(`${m[1]}${(m[2] ?? '').slice(0, 4)}${m[3]}`) : NaN;
  if (Number.isNaN(ms)) throw StanzaError.badRequest(`'${field}' is not an XEP-0082 DateTime`);
  return ms;
}

/** The filters of a submitted query form; an unknown field is feature-not-implemented (§4.1.5). */
export function parseQueryForm(x: Element | undefined, opts: { fullText: boolean }): ArchiveFilter {
  const filter: ArchiveFilter = {};
  if (!x) return filter;
  if (x.attrs.type !== undefined && x.attrs.type !== 'submit') throw StanzaError.badRequest('The query form must be of type submit');
  for (const field of x.getChildren('field')) {
    const name = field.attrs.var ?? '';
    const values = field.getChildren('value').map((v) => v.text().trim());
    const value = values[0] ?? '';
    switch (name) {
      case 'FORM_TYPE':
        if (value !== MAM_NS.MAM) throw StanzaError.badRequest(`FORM_TYPE must be ${MAM_NS.MAM}`);
        break;
      case 'with':
        if (value !== '') filter.with = Jid.parse(value).toString();
        break;
      case 'start':
        if (value !== '') filter.start = parseDateTime(value, name);
        break;
      case 'end':
        if (value !== '') filter.end = parseDateTime(value, name);
        break;
      case 'after-id':
        if (value !== '') filter.afterId = value;
        break;
      case 'before-id':
        if (value !== '') filter.beforeId = value;
        break;
      case 'ids':
        filter.ids = values.filter((v) => v !== '');
        break;
      default:
        if (name === FULLTEXT_FIELD && opts.fullText) {
          // XEP-0431: an empty search string searches nothing, i.e. does not filter.
          const text = values.join(' ').trim();
          if (text !== '') filter.text = text;
          break;
        }
        throw StanzaError.featureNotImplemented(`Unsupported query field '${name}'`);
    }
  }
  return filter;
}

/** The fields a client may use (§4.1.5); 'ids' is open to any value (XEP-0122). */
export function queryForm(opts: { fullText: boolean }): Element {
  return xml('x', { xmlns: MAM_NS.DATA, type: 'form' },
    xml('field', { type: 'hidden', var: 'FORM_TYPE' }, xml('value', null, MAM_NS.MAM)),
    xml('field', { type: 'jid-single', var: 'with' }),
    xml('field', { type: 'text-single', var: 'start' }),
    xml('field', { type: 'text-single', var: 'end' }),
    xml('field', { type: 'text-single', var: 'before-id' }),
    xml('field', { type: 'text-single', var: 'after-id' }),
    xml('field', { type: 'list-multi', var: 'ids' },
      xml('validate', { xmlns: MAM_NS.XDATA_VALIDATE, datatype: 'xs:string' }, xml('open'))),
    opts.fullText ? xml('field', { type: 'text-single', var: FULLTEXT_FIELD }) : undefined,
  );
}
