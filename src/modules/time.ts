// XEP-0202: Entity Time <https://xmpp.org/extensions/xep-0202.html> 2.0
import { defineModule } from '../core/module.ts';
import { xml } from '../xml/element.ts';

export const NS_TIME = 'urn:xmpp:time';

/** The zone offset as an XEP-0082 TZD, always numeric ("+00:00" rather than "Z"): <tzo/> is an offset. */
export function tzo(date: Date): string {
  const minutes = -date.getTimezoneOffset();
  const abs = Math.abs(minutes);
  const hh = String(Math.floor(abs / 60)).padStart(2, '0');
  const mm = String(abs % 60).padStart(2, '0');
  return `${minutes < 0 ? '-' : '+'}${hh}:${mm}`;
}

/** UTC as an XEP-0082 DateTime ("MUST be expressed in UTC"), to the second like the XEP's example. */
export function utc(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export default defineModule({
  id: 'time',
  xeps: [{ xep: 202, version: '2.0', status: 'complete' }],
  setup(ctx) {
    ctx.disco.feature(NS_TIME);
    ctx.iq.get(NS_TIME, 'time', () => {
      const now = new Date();
      return xml('time', { xmlns: NS_TIME }, xml('tzo', null, tzo(now)), xml('utc', null, utc(now)));
    }, { to: ['host'] });
  },
});
