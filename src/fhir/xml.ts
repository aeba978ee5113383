/**
 * FHIR's XML form, to and from its JSON form, for the resources the identity feed takes and gives
 * (a PIXm Patient; an OperationOutcome): http://hl7.org/fhir/R4/xml.html and json.html.
 *
 * A small strict XML reader of its own rather than a dependency: FHIR XML is a narrow dialect
 * (no DTD — FHIR forbids one, and refusing it closes the door to entity expansion and external
 * entities —, values in `value` attributes, text only inside the XHTML narrative), and what the
 * conversion needs beyond XML is FHIR's own knowledge, which no XML parser has: which elements
 * repeat (arrays in JSON whether one or many), which primitives are booleans and numbers, and
 * that a primitive's id and extensions go to `_name`. That knowledge is kept here for the
 * Patient elements PIXm uses and the datatypes they hold; an element not listed that occurs twice
 * becomes an array all the same, so nothing a client sent is lost.
 */

export const FHIR_NS = 'http://hl7.org/fhir';
export const XHTML_NS = 'http://www.w3.org/1999/xhtml';

/** A body that is not well-formed XML or not FHIR XML; the message names where (never a value). */
export class FhirXmlError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FhirXmlError';
  }
}

interface XmlElement {
  name: string;
  ns: string | undefined;
  attrs: Map<string, string>;
  children: (XmlElement | string)[];
}

const ENTITIES: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };
const NAME = /[A-Za-z_][\w.\-]*(?::[A-Za-z_][\w.\-]*)?/y;

function decode(text: string, where: string): string {
  return text.replace(/&([^;&\s]{0,10});?/g, (whole, ref: string) => {
    if (!whole.endsWith(';')) throw new FhirXmlError(`an unterminated character reference in ${where}`);
    if (ref in ENTITIES) return ENTITIES[ref]!;
    const m = /^#(x[0-9a-fA-F]{1,6}|[0-9]{1,7})$/.exec(ref);
    if (m) {
      const code = m[1]!.startsWith('x') ? parseInt(m[1]!.slice(1), 16) : parseInt(m[1]!, 10);
      if (code > 0 && code <= 0x10ffff) return String.fromCodePoint(code);
    }
    throw new FhirXmlError(`an unknown entity &${ref}; in ${where} (FHIR XML has no DTD to define one)`);
  });
}

/** The document's root element, namespaces resolved. */
export function parseXml(text: string): XmlElement {
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  const fail = (what: string): never => {
    const line = text.slice(0, i).split('\n').length;
    throw new FhirXmlError(`the XML is not well-formed at line ${line}: ${what}`);
  };
  const skipSpace = () => {
    while (i < text.length && /\s/.test(text[i]!)) i++;
  };
  /** Moves past the next `terminator`, or fails naming `what` was left open; returns where the terminator began. */
  const skipPast = (terminator: string, what: string): number => {
    const end = text.indexOf(terminator, i);
    if (end < 0) fail(`an unterminated ${what}`);
    i = end + terminator.length;
    return end;
  };
  const skipMisc = () => {
    for (;;) {
      skipSpace();
      if (text.startsWith('<?', i)) skipPast('?>', 'processing instruction');
      else if (text.startsWith('<!--', i)) skipPast('-->', 'comment');
      else if (text.startsWith('<!DOCTYPE', i)) {
        throw new FhirXmlError('FHIR XML must not have a DOCTYPE');
      } else return;
    }
  };
  const name = (): string => {
    NAME.lastIndex = i;
    const m = NAME.exec(text);
    if (!m) return fail('a name was expected');
    i += m[0].length;
    return m[0];
  };
  const element = (scope: Map<string, string>): XmlElement => {
    if (text[i] !== '<') fail('an element was expected');
    i++;
    const qname = name();
    const raw = new Map<string, string>();
    for (;;) {
      const before = i;
      skipSpace();
      if (text[i] === '/' || text[i] === '>') break;
      if (i === before) fail(`a space was expected between attributes of <${qname}>`);
      const a = name();
      skipSpace();
      if (text[i] !== '=') fail(`attribute ${a} of <${qname}> has no value`);
      i++;
      skipSpace();
      const q = text[i];
      if (q !== '"' && q !== "'") return fail(`attribute ${a} of <${qname}> is not quoted`);
      const end = text.indexOf(q, i + 1);
      if (end < 0) fail(`attribute ${a} of <${qname}> is not closed`);
      const v = text.slice(i + 1, end);
      if (v.includes('<')) fail(`attribute ${a} of <${qname}> holds a "<"`);
      if (raw.has(a)) fail(`attribute ${a} is given twice on <${qname}>`);
      raw.set(a, decode(v, `attribute ${a} of <${qname}>`));
      i = end + 1;
    }
    const ns = new Map(scope);
    const attrs = new Map<string, string>();
    for (const [k, v] of raw) {
      if (k === 'xmlns') ns.set('', v);
      else if (k.startsWith('xmlns:')) ns.set(k.slice(6), v);
    }
    for (const [k, v] of raw) if (k !== 'xmlns' && !k.startsWith('xmlns:')) attrs.set(k, v);
    const colon = qname.indexOf(':');
    const prefix = colon < 0 ? '' : qname.slice(0, colon);
    const local = colon < 0 ? qname : qname.slice(colon + 1);
    if (prefix && !ns.has(prefix)) fail(`the prefix ${prefix} of <${qname}> is not declared`);
    const el: XmlElement = { name: local, ns: ns.get(prefix) || undefined, attrs, children: [] };
    if (text.startsWith('/>', i)) {
      i += 2;
      return el;
    }
    i++; // '>'
    for (;;) {
      if (i >= text.length) fail(`<${qname}> is not closed`);
      if (text.startsWith('</', i)) {
        i += 2;
        const closing = name();
        if (closing !== qname) fail(`</${closing}> closes <${qname}>`);
        skipSpace();
        if (text[i] !== '>') fail(`</${closing}> is not closed`);
        i++;
        return el;
      }
      if (text.startsWith('<!--', i)) skipPast('-->', 'comment');
      else if (text.startsWith('<![CDATA[', i)) {
        const from = i + 9;
        el.children.push(text.slice(from, skipPast(']]>', 'CDATA section')));
      } else if (text.startsWith('<?', i)) skipPast('?>', 'processing instruction');
      else if (text.startsWith('<!', i)) {
        fail('a declaration inside an element');
      } else if (text[i] === '<') {
        el.children.push(element(ns));
      } else {
        const end = text.indexOf('<', i);
        const chunk = text.slice(i, end < 0 ? text.length : end);
        el.children.push(decode(chunk, `the text of <${qname}>`));
        i += chunk.length;
      }
    }
  };
  skipMisc();
  if (text[i] !== '<') fail('no root element');
  const root = element(new Map());
  skipMisc();
  if (i < text.length) fail('content after the root element');
  return root;
}

// ── FHIR's knowledge ─────────────────────────────────────────────────────────────────────────

/** Elements that repeat wherever they occur (by the datatypes that hold them). */
const REPEATS_ANYWHERE = new Set(['extension', 'modifierExtension', 'coding', 'given', 'prefix', 'suffix', 'line', 'profile', 'security', 'tag', 'contained', 'issue', 'location', 'expression']);
/** Elements that repeat at one place only: `identifier` repeats on Patient, not in a Reference. */
const REPEATS_AT = new Set([
  'Patient.identifier',
  'Patient.name',
  'Patient.telecom',
  'Patient.address',
  'Patient.photo',
  'Patient.contact',
  'Patient.contact.relationship',
  'Patient.contact.telecom',
  'Patient.communication',
  'Patient.generalPractitioner',
  'Patient.link',
]);
const BOOLEANS = new Set(['active', 'deceasedBoolean', 'multipleBirthBoolean', 'preferred', 'valueBoolean']);
const INTEGERS = new Set(['multipleBirthInteger', 'rank', 'size', 'valueInteger', 'valuePositiveInt', 'valueUnsignedInt']);
const QUANTITIES = /^value(Quantity|Age|Distance|Duration|Count|Money|SimpleQuantity)$/;

const repeats = (path: string, name: string) => REPEATS_ANYWHERE.has(name) || REPEATS_AT.has(`${path}.${name}`);

function primitive(name: string, parent: string, v: string, path: string): string | number | boolean {
  if (BOOLEANS.has(name)) {
    if (v !== 'true' && v !== 'false') throw new FhirXmlError(`${path} must be true or false`);
    return v === 'true';
  }
  if (INTEGERS.has(name)) {
    if (!/^-?[0-9]{1,10}$/.test(v)) throw new FhirXmlError(`${path} must be a whole number`);
    return Number(v);
  }
  if (name === 'valueDecimal' || (name === 'value' && QUANTITIES.test(parent))) {
    if (!/^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$/.test(v)) throw new FhirXmlError(`${path} must be a decimal`);
    return Number(v);
  }
  return v;
}

function serialiseXhtml(el: XmlElement, declareNs: boolean): string {
  const attrs = [...el.attrs].map(([k, v]) => ` ${k}="${escapeXml(v)}"`).join('');
  const ns = declareNs ? ` xmlns="${XHTML_NS}"` : '';
  if (el.children.length === 0) return `<${el.name}${ns}${attrs}/>`;
  const inner = el.children.map((c) => (typeof c === 'string' ? escapeXml(c, false) : serialiseXhtml(c, false))).join('');
  return `<${el.name}${ns}${attrs}>${inner}</${el.name}>`;
}

function elementsOf(el: XmlElement, path: string): XmlElement[] {
  const out: XmlElement[] = [];
  for (const c of el.children) {
    if (typeof c === 'string') {
      if (c.trim()) throw new FhirXmlError(`${path} holds text: FHIR XML carries values in value attributes`);
    } else {
      if (c.ns !== FHIR_NS && !(c.name === 'div' && c.ns === XHTML_NS)) throw new FhirXmlError(`${path}.${c.name} is not in the FHIR namespace ${FHIR_NS}`);
      out.push(c);
    }
  }
  return out;
}

function resource(el: XmlElement): Record<string, unknown> {
  if (el.ns !== FHIR_NS) throw new FhirXmlError(`the root element ${el.name} is not in the FHIR namespace ${FHIR_NS}`);
  if (!/^[A-Z][A-Za-z]+$/.test(el.name)) throw new FhirXmlError(`the root element ${el.name} is not a FHIR resource`);
  return { resourceType: el.name, ...members(el, el.name, false) };
}

/** The JSON members of a resource or a complex element: its attributes (datatypes' id, extension's url) and children. */
function members(el: XmlElement, path: string, datatype: boolean): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of el.attrs) {
    // Another namespace's attributes (xsi:schemaLocation on the root, say) are not FHIR's to read.
    if (k.includes(':')) continue;
    if (datatype && (k === 'id' || (k === 'url' && (el.name === 'extension' || el.name === 'modifierExtension')))) out[k] = v;
    else throw new FhirXmlError(`${path} has an attribute ${k} FHIR does not define`);
  }
  const groups = new Map<string, { value: unknown; under: Record<string, unknown> | null }[]>();
  for (const c of elementsOf(el, path)) {
    const at = `${path}.${c.name}`;
    let value: unknown = null;
    let under: Record<string, unknown> | null = null;
    if (c.name === 'div' && c.ns === XHTML_NS) value = serialiseXhtml(c, true);
    else if (c.name === 'contained' || c.name === 'resource') {
      const inner = elementsOf(c, at);
      if (inner.length !== 1) throw new FhirXmlError(`${at} must hold exactly one resource`);
      value = resource(inner[0]!);
    } else if (c.attrs.has('value')) {
      value = primitive(c.name, el.name, c.attrs.get('value')!, at);
      under = primitiveExtras(c, at);
    } else if (!isComplex(c)) {
      // A primitive with no value: only its id and extensions (json.html: `_name` alone).
      under = primitiveExtras(c, at);
      if (!under) throw new FhirXmlError(`${at} is empty`);
    } else value = members(c, at, true);
    const list = groups.get(c.name) ?? [];
    list.push({ value, under });
    groups.set(c.name, list);
  }
  for (const [name, list] of groups) {
    const many = list.length > 1 || repeats(path, name);
    const hasValue = list.some((x) => x.value !== null);
    const hasUnder = list.some((x) => x.under !== null);
    if (hasValue) out[name] = many ? list.map((x) => x.value) : list[0]!.value;
    if (hasUnder) out[`_${name}`] = many ? list.map((x) => x.under) : list[0]!.under;
  }
  return out;
}

/** Whether an element without a value attribute is complex: it has children other than extensions, or attributes other than id. */
function isComplex(c: XmlElement): boolean {
  if ([...c.attrs.keys()].some((k) => k !== 'id')) return true;
  const kids = c.children.filter((x): x is XmlElement => typeof x !== 'string');
  return kids.length === 0 ? false : kids.some((k) => k.name !== 'extension');
}

function primitiveExtras(c: XmlElement, at: string): Record<string, unknown> | null {
  const extras: Record<string, unknown> = {};
  for (const [k, v] of c.attrs) {
    if (k === 'id') extras.id = v;
    else if (k !== 'value' && !k.includes(':')) throw new FhirXmlError(`${at} has an attribute ${k} FHIR does not define`);
  }
  const ext = elementsOf(c, at);
  if (ext.some((e) => e.name !== 'extension')) throw new FhirXmlError(`${at} is a primitive: it holds extensions only`);
  if (ext.length > 0) extras.extension = ext.map((e) => members(e, `${at}.extension`, true));
  return Object.keys(extras).length > 0 ? extras : null;
}

/** A FHIR resource in XML, as its JSON form. */
export function fhirXmlToJson(text: string): Record<string, unknown> {
  return resource(parseXml(text));
}

// ── and back ─────────────────────────────────────────────────────────────────────────────────

export function escapeXml(s: string, attribute = true): string {
  const out = s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  return attribute ? out.replace(/"/g, '&quot;').replace(/\r/g, '&#xD;').replace(/\n/g, '&#xA;').replace(/\t/g, '&#x9;') : out;
}

/**
 * A resource's JSON form as FHIR XML, members in the order the JSON has them (FHIR's own order
 * when the JSON came from a FHIR client, from fhirXmlToJson, or from this server).
 */
export function fhirJsonToXml(r: Record<string, unknown>): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n${resourceXml(r, true)}`;
}

function resourceXml(r: Record<string, unknown>, root: boolean): string {
  const type = String(r.resourceType);
  return `<${type}${root ? ` xmlns="${FHIR_NS}"` : ''}>${membersXml(r, false)}</${type}>`;
}

function membersXml(o: Record<string, unknown>, datatype: boolean): string {
  let out = '';
  const names = new Set<string>();
  for (const k of Object.keys(o)) {
    if (k === 'resourceType' || (datatype && (k === 'id' || k === 'url'))) continue;
    names.add(k.startsWith('_') ? k.slice(1) : k);
  }
  for (const name of names) {
    const v = o[name];
    const under = o[`_${name}`];
    const values = Array.isArray(v) ? v : v === undefined ? [] : [v];
    const unders = Array.isArray(under) ? under : under === undefined ? [] : [under];
    const n = Math.max(values.length, unders.length);
    for (let i = 0; i < n; i++) out += elementXml(name, values[i] ?? null, (unders[i] ?? null) as Record<string, unknown> | null);
  }
  return out;
}

function elementXml(name: string, v: unknown, under: Record<string, unknown> | null): string {
  if (name === 'div' && typeof v === 'string') return v;
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    if ((name === 'contained' || name === 'resource') && typeof o.resourceType === 'string') return `<${name}>${resourceXml(o, false)}</${name}>`;
    const attrs = `${typeof o.id === 'string' ? ` id="${escapeXml(o.id)}"` : ''}${typeof o.url === 'string' ? ` url="${escapeXml(o.url)}"` : ''}`;
    const inner = membersXml(o, true);
    return inner ? `<${name}${attrs}>${inner}</${name}>` : `<${name}${attrs}/>`;
  }
  const id = typeof under?.id === 'string' ? ` id="${escapeXml(under.id)}"` : '';
  const value = v === null ? '' : ` value="${escapeXml(String(v))}"`;
  const ext = Array.isArray(under?.extension) ? (under.extension as unknown[]).map((e) => elementXml('extension', e, null)).join('') : '';
  return ext ? `<${name}${id}${value}>${ext}</${name}>` : `<${name}${id}${value}/>`;
}
