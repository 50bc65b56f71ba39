// Every XML namespace Parley speaks, in one place.
export const NS = {
  CLIENT: 'jabber:client',
  SERVER: 'jabber:server',
  STREAM: 'http://etherx.jabber.org/streams',
  /** RFC 7395: the <open/> and <close/> of a stream framed in WebSocket messages. */
  FRAMING: 'urn:ietf:params:xml:ns:xmpp-framing',
  /** XEP-0124 and XEP-0206: the BOSH <body/> wrapper and its XMPP attributes. */
  HTTPBIND: 'http://jabber.org/protocol/httpbind',
  XBOSH: 'urn:xmpp:xbosh',
  STREAMS_ERR: 'urn:ietf:params:xml:ns:xmpp-streams',
  STANZAS: 'urn:ietf:params:xml:ns:xmpp-stanzas',
  TLS: 'urn:ietf:params:xml:ns:xmpp-tls',
  SASL: 'urn:ietf:params:xml:ns:xmpp-sasl',
  BIND: 'urn:ietf:params:xml:ns:xmpp-bind',
  SESSION: 'urn:ietf:params:xml:ns:xmpp-session',
  ROSTER: 'jabber:iq:roster',
  ROSTER_VER: 'urn:xmpp:features:rosterver',
  PRE_APPROVAL: 'urn:xmpp:features:pre-approval',
  DISCO_INFO: 'http://jabber.org/protocol/disco#info',
  DISCO_ITEMS: 'http://jabber.org/protocol/disco#items',
  PING: 'urn:xmpp:ping',
  DELAY: 'urn:xmpp:delay',
  OFFLINE: 'msgoffline',
  HINTS: 'urn:xmpp:hints',
  CHATSTATES: 'http://jabber.org/protocol/chatstates',
  XML: 'http://www.w3.org/XML/1998/namespace',
} as const;
