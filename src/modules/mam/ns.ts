// The namespaces of XEP-0313 and the extensions it is built from; they stay with the module that speaks them.
export const MAM_NS = {
  MAM: 'urn:xmpp:mam:2',
  MAM_EXTENDED: 'urn:xmpp:mam:2#extended',
  SID: 'urn:xmpp:sid:0',
  RSM: 'http://jabber.org/protocol/rsm',
  FORWARD: 'urn:xmpp:forward:0',
  DATA: 'jabber:x:data',
  XDATA_VALIDATE: 'http://jabber.org/protocol/xdata-validate',
  FULLTEXT: 'urn:xmpp:fulltext:0',
} as const;

/** XEP-0431's form field, in XEP-0068 Clark notation. */
export const FULLTEXT_FIELD = `{${MAM_NS.FULLTEXT}}fulltext`;
