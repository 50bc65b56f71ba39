// XEP-0004: Data Forms <https://xmpp.org/extensions/xep-0004.html> 2.13.2 — the registration forms XEP-0077 uses.
import { xml, type Element } from '../../xml/element.ts';

export const NS_DATA = 'jabber:x:data';

/** FORM_TYPEs XEP-0077 §13.4 registers for its three use cases. */
export const FORM_TYPE = {
  REGISTER: 'jabber:iq:register',
  CANCEL: 'jabber:iq:register:cancel',
  CHANGE_PASSWORD: 'jabber:iq:register:changepassword',
} as const;

export type SubmittedForm = { type: string | undefined; formType: string | undefined; values: Map<string, string> };

/** The first value of each field of a form; FORM_TYPE separately. */
export function readForm(x: Element): SubmittedForm {
  const values = new Map<string, string>();
  for (const field of x.getChildren('field')) {
    const name = field.attrs.var;
    if (name === undefined || values.has(name)) continue;
    values.set(name, field.getChild('value')?.text() ?? '');
  }
  const formType = values.get('FORM_TYPE');
  values.delete('FORM_TYPE');
  return { type: x.attrs.type, formType, values };
}

export function registrationForm(instructions: string, passwordHint: string): Element {
  return xml('x', { xmlns: NS_DATA, type: 'form' },
    xml('title', null, 'Account registration'),
    xml('instructions', null, instructions),
    xml('field', { type: 'hidden', var: 'FORM_TYPE' }, xml('value', null, FORM_TYPE.REGISTER)),
    xml('field', { type: 'text-single', var: 'username', label: 'Username' }, xml('required')),
    xml('field', { type: 'text-private', var: 'password', label: 'Password' }, xml('desc', null, passwordHint), xml('required')),
  );
}
