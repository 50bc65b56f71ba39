// XEP-0060: Publish-Subscribe <https://xmpp.org/extensions/xep-0060.html> 1.24.1 — the node configuration subset a
// PEP node supports (the pubsub#node_config form), as data forms (XEP-0004) for configure, create and publish-options.
import { StanzaError } from '../../core/errors.ts';
import { Element, xml } from '../../xml/element.ts';
import { DATA_FORMS } from '../disco.ts';

export const PUBSUB = 'http://jabber.org/protocol/pubsub';
export const PUBSUB_EVENT = 'http://jabber.org/protocol/pubsub#event';
export const PUBSUB_OWNER = 'http://jabber.org/protocol/pubsub#owner';
export const PUBSUB_ERRORS = 'http://jabber.org/protocol/pubsub#errors';
export const NODE_CONFIG = 'http://jabber.org/protocol/pubsub#node_config';
export const PUBLISH_OPTIONS = 'http://jabber.org/protocol/pubsub#publish-options';

export const ACCESS_MODELS = ['open', 'presence', 'whitelist'] as const;
export type AccessModel = (typeof ACCESS_MODELS)[number];
export const SEND_LAST = ['never', 'on_sub', 'on_sub_and_presence'] as const;
export type SendLast = (typeof SEND_LAST)[number];

/** A node's configuration; serialized as JSON in the PEP store. */
export type NodeConfig = {
  accessModel: AccessModel;
  /** 'max' follows the server's limit. */
  maxItems: number | 'max';
  persistItems: boolean;
  sendLastPublishedItem: SendLast;
  deliverNotifications: boolean;
  deliverPayloads: boolean;
  notifyRetract: boolean;
  notifyDelete: boolean;
  title: string;
  type: string;
  /** Bare JIDs with the member affiliation: who may read a whitelist node besides the owner. */
  members: string[];
};

export type Settings = Omit<NodeConfig, 'members'>;

/** XEP-0163 'Recommended Defaults': the presence access model, notifications on, and the last item on presence. */
export const DEFAULT_CONFIG: NodeConfig = {
  accessModel: 'presence',
  maxItems: 1,
  persistItems: true,
  sendLastPublishedItem: 'on_sub_and_presence',
  deliverNotifications: true,
  deliverPayloads: true,
  notifyRetract: true,
  notifyDelete: true,
  title: '',
  type: '',
  members: [],
};

type Value = Settings[keyof Settings];
type Field = {
  key: keyof Settings;
  type: 'boolean' | 'list-single' | 'text-single';
  label: string;
  options?: readonly string[];
  /** The value, or undefined when it is not acceptable. */
  parse(values: string[], maxItems: number): Value | undefined;
  render(value: Value): string;
};

const bool = (key: keyof Settings, label: string): Field => ({
  key, type: 'boolean', label,
  parse: ([v]) => (v === '1' || v === 'true' ? true : v === '0' || v === 'false' ? false : undefined),
  render: (v) => (v ? '1' : '0'),
});
const oneOf = (key: keyof Settings, label: string, options: readonly string[]): Field => ({
  key, type: 'list-single', label, options,
  parse: ([v]) => (v !== undefined && options.includes(v) ? v : undefined),
  render: (v) => String(v),
});
const text = (key: keyof Settings, label: string): Field => ({
  key, type: 'text-single', label,
  parse: ([v]) => v ?? '',
  render: (v) => String(v),
});

/** The pubsub#node_config fields a PEP node understands, by var. */
export const FIELDS: Readonly<Record<string, Field>> = {
  'pubsub#access_model': oneOf('accessModel', 'Who may retrieve items', ACCESS_MODELS),
  'pubsub#max_items': {
    key: 'maxItems', type: 'text-single', label: 'Max number of items to persist (or max)',
    parse: ([v], max) => {
      if (v === 'max') return 'max';
      if (v === undefined || !/^\d+$/.test(v)) return undefined;
      const n = Number(v);
      return n >= 1 && n <= max ? n : undefined;
    },
    render: (v) => String(v),
  },
  'pubsub#persist_items': bool('persistItems', 'Persist items to storage'),
  'pubsub#send_last_published_item': oneOf('sendLastPublishedItem', 'When to send the last published item', SEND_LAST),
  'pubsub#deliver_notifications': bool('deliverNotifications', 'Deliver event notifications'),
  'pubsub#deliver_payloads': bool('deliverPayloads', 'Deliver payloads with event notifications'),
  'pubsub#notify_retract': bool('notifyRetract', 'Notify subscribers when items are removed'),
  'pubsub#notify_delete': bool('notifyDelete', 'Notify subscribers when the node is deleted'),
  'pubsub#title': text('title', 'A friendly name for the node'),
  'pubsub#type': text('type', 'The namespace of the payload'),
};

/** The fields of a data form, by var (FORM_TYPE included). */
export function formFields(x: Element): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const f of x.getChildren('field')) {
    const v = f.attrs.var;
    if (v !== undefined) out.set(v, f.getChildren('value').map((e) => e.text()));
  }
  return out;
}

/** The data form child of an element (publish-options, configure), if any. */
export function formOf(el: Element | undefined): Element | undefined {
  return el?.getChild('x', DATA_FORMS);
}

/**
 * Reads a submitted node_config or publish-options form into settings. Fields we do not support, and values we
 * cannot honour, are listed in `rejected` rather than silently dropped: a client relying on them must learn.
 */
export function readForm(x: Element, formType: string, maxItems: number): { settings: Partial<Settings>; rejected: string[] } {
  const settings: Partial<Settings> = {};
  const rejected: string[] = [];
  for (const [name, values] of formFields(x)) {
    if (name === 'FORM_TYPE') {
      if (values[0] !== formType) rejected.push(name);
      continue;
    }
    const field = FIELDS[name];
    const value = field?.parse(values, maxItems);
    if (!field || value === undefined) rejected.push(name);
    else (settings as Record<string, Value>)[field.key] = value;
  }
  return { settings, rejected };
}

/** A configuration form (type form) showing the node's current settings. */
export function configForm(config: Settings): Element {
  return xml('x', { xmlns: DATA_FORMS, type: 'form' },
    xml('field', { var: 'FORM_TYPE', type: 'hidden' }, xml('value', null, NODE_CONFIG)),
    Object.entries(FIELDS).map(([name, f]) => xml('field', { var: name, type: f.type, label: f.label },
      xml('value', null, f.render(config[f.key])),
      (f.options ?? []).map((o) => xml('option', null, xml('value', null, o))))));
}

/** Whether the node's settings meet the publish-options preconditions (XEP-0060 §7.1.5). */
export function meetsPreconditions(config: Settings, wanted: Partial<Settings>, maxItems: number): boolean {
  const norm = (k: keyof Settings, v: Value | undefined): Value | undefined => (k === 'maxItems' && v === 'max' ? maxItems : v);
  return (Object.keys(wanted) as Array<keyof Settings>).every((k) => norm(k, config[k]) === norm(k, wanted[k]));
}

export function parseConfig(json: string): NodeConfig {
  try {
    return { ...DEFAULT_CONFIG, ...(JSON.parse(json) as Partial<NodeConfig>) };
  } catch {
    return { ...DEFAULT_CONFIG };
  }
}

/** A pubsub error: a defined condition with its XEP-0060 application-specific condition. */
export function pubsubError(condition: ConstructorParameters<typeof StanzaError>[0], app: string, attrs?: Record<string, string>, text?: string): StanzaError {
  return new StanzaError(condition, text, { app: xml(app, { xmlns: PUBSUB_ERRORS, ...attrs }) });
}

export const unsupported = (feature: string): StanzaError => pubsubError('feature-not-implemented', 'unsupported', { feature });
