/**
 * Street lines in USPS Publication 28 form, so that "12 North Oak Street, Apt. #4" from a roster
 * and "12 N OAK ST APT 4" from the registry compare equal.
 */
import { fold, MODE_STREET } from './fold.ts';

/** Each canonical abbreviation followed by the spellings that mean it (it maps to itself too). */
const SUFFIX_TABLE = `
ALY ALLEY ALLEE ALLY
ANX ANNEX ANEX ANNX
ARC ARCADE
AVE AVENUE AV AVEN AVENU AVN AVNUE AVNU
BYU BAYOU BAYOO
BCH BEACH
BND BEND
BLF BLUFF BLUF
BLFS BLUFFS
BTM BOTTOM BOT BOTTM
BLVD BOULEVARD BOUL BOULV BLV BOULEVD
BR BRANCH BRNCH
BRG BRIDGE BRDGE
BRK BROOK
BRKS BROOKS
BYP BYPASS BYPA BYPAS BYPS
CP CAMP CMP
CYN CANYON CANYN CNYN
CPE CAPE
CSWY CAUSEWAY CAUSWA CAUSWAY
CTR CENTER CEN CENT CENTR CENTRE CNTER CNTR
CIR CIRCLE CIRC CIRCL CRCL CRCLE
CIRS CIRCLES
CLF CLIFF
CLFS CLIFFS
CLB CLUB
CMN COMMON
COR CORNER
CORS CORNERS
CRSE COURSE
CT COURT CRT CRT COURTE
CTS COURTS
CV COVE
CVS COVES
CRK CREEK CRK
CRES CRESCENT CRSENT CRSNT CRECENT
CRST CREST
XING CROSSING CRSSNG CROSING
XRD CROSSROAD
CURV CURVE
DL DALE
DM DAM
DV DIVIDE DIV DVD
DR DRIVE DRIV DRV DRIVES
EST ESTATE
ESTS ESTATES
EXPY EXPRESSWAY EXP EXPR EXPRESS EXPW
EXT EXTENSION EXTN EXTNSN
FLS FALLS
FRY FERRY FRRY
FLD FIELD
FLDS FIELDS
FLT FLAT
FLTS FLATS
FRD FORD
FRST FOREST FORESTS
FRG FORGE FORG
FRK FORK
FRKS FORKS
FT FORT FRT
FWY FREEWAY FREEWY FRWAY FRWY
GDN GARDEN GARDN GRDEN GRDN
GDNS GARDENS GRDNS
GTWY GATEWAY GATEWY GATWAY GTWAY
GLN GLEN
GRN GREEN
GRV GROVE GROV
HBR HARBOR HARB HARBR HRBOR HARBOUR
HVN HAVEN
HTS HEIGHTS HT HGTS
HWY HIGHWAY HIGHWY HIWAY HIWY HWAY
HL HILL
HLS HILLS
HOLW HOLLOW HLLW HOLLOWS HOLWS
INLT INLET
IS ISLAND ISLND
ISS ISLANDS ISLNDS
JCT JUNCTION JCTION JCTN JUNCTN JUNCTON
KNL KNOLL KNOL
LK LAKE
LKS LAKES
LNDG LANDING LNDNG
LN LANE LNE
LGT LIGHT
LOOP LOOP LOOPS
MALL MALL
MNR MANOR
MDW MEADOW
MDWS MEADOWS MEDOWS
ML MILL
MSN MISSION MISSN MSSN
MTWY MOTORWAY
MT MOUNT MNT
MTN MOUNTAIN MNTAIN MNTN MOUNTIN MTIN
OPAS OVERPASS
ORCH ORCHARD ORCHRD
OVAL OVAL OVL
PARK PARK PRK PARKS
PKWY PARKWAY PARKWY PKWAY PKY PARKWAYS PKWYS
PASS PASS
PSGE PASSAGE
PATH PATH PATHS
PIKE PIKE PIKES
PNES PINES
PL PLACE PLC
PLN PLAIN
PLNS PLAINS
PLZ PLAZA PLZA
PT POINT
PTS POINTS
PRT PORT
PR PRAIRIE PRR
RADL RADIAL RAD RADIEL
RNCH RANCH RANCHES RNCHS
RPDS RAPIDS
RST REST
RDG RIDGE RDGE
RIV RIVER RVR RIVR
RD ROAD
RDS ROADS
RTE ROUTE
ROW ROW
RUN RUN
SHR SHORE SHOAR
SHRS SHORES
SKWY SKYWAY
SPG SPRING SPNG SPRNG
SPGS SPRINGS SPNGS SPRNGS
SQ SQUARE SQR SQRE SQU
STA STATION STATN STN
ST STREET STRT STR STREE
STS STREETS
SMT SUMMIT SUMIT SUMITT
TER TERRACE TERR TERACE
TRWY THROUGHWAY
TRCE TRACE TRACES
TRAK TRACK TRK TRKS TRACKS
TRL TRAIL TRAILS TRLS TR
TUNL TUNNEL TUNEL TUNLS TUNNELS TUNNL
TPKE TURNPIKE TRNPK TURNPK
UPAS UNDERPASS
VLY VALLEY VALLY VLLY
VIA VIADUCT VDCT VIADCT
VW VIEW
VWS VIEWS
VLG VILLAGE VILL VILLAG VILLG VILLIAGE
VL VILLE
VIS VISTA VIST VST VSTA
WALK WALK WALKS
WAY WAY WY
WL WELL
WLS WELLS
`;

function tableToMap(table: string): Map<string, string> {
  const map = new Map<string, string>();
  for (const line of table.split('\n')) {
    const words = line.trim().split(' ');
    const canonical = words[0]!;
    if (canonical === '') continue;
    for (const w of words) map.set(w, canonical);
  }
  return map;
}

const STREET_SUFFIXES: ReadonlyMap<string, string> = tableToMap(SUFFIX_TABLE);

const DIRECTIONALS: ReadonlyMap<string, string> = new Map([
  ['NORTH', 'N'], ['N', 'N'], ['SOUTH', 'S'], ['S', 'S'], ['EAST', 'E'], ['E', 'E'], ['WEST', 'W'], ['W', 'W'],
  ['NORTHEAST', 'NE'], ['NE', 'NE'], ['NORTHWEST', 'NW'], ['NW', 'NW'],
  ['SOUTHEAST', 'SE'], ['SE', 'SE'], ['SOUTHWEST', 'SW'], ['SW', 'SW'],
]);

/**
 * Secondary unit designators. Words that are also common street names (FRONT, REAR, UPPER,
 * LOWER, LOBBY, SPACE, PIER, KEY) are left out: "12 FRONT ST" must not become a unit.
 */
const UNIT_DESIGNATORS: ReadonlyMap<string, string> = new Map([
  ['APARTMENT', 'APT'], ['APT', 'APT'], ['APPT', 'APT'], ['APTS', 'APT'],
  ['SUITE', 'STE'], ['STE', 'STE'], ['SUIT', 'STE'],
  ['UNIT', 'UNIT'], ['UNT', 'UNIT'],
  ['BUILDING', 'BLDG'], ['BLDG', 'BLDG'], ['BLDNG', 'BLDG'],
  ['FLOOR', 'FL'], ['FLR', 'FL'], ['FL', 'FL'],
  ['ROOM', 'RM'], ['RM', 'RM'],
  ['LOT', 'LOT'],
  ['DEPARTMENT', 'DEPT'], ['DEPT', 'DEPT'],
  ['TRAILER', 'TRLR'], ['TRLR', 'TRLR'],
  ['SPC', 'SPC'],
  ['HANGAR', 'HNGR'], ['HNGR', 'HNGR'],
]);

/** Designator words that are also ordinary words ("OAK TRAILER PARK"): a unit only before a number. */
const NEEDS_NUMBER: ReadonlySet<string> = new Set(['TRAILER', 'LOT']);

function startsWithDigitOrHash(token: string | undefined): boolean {
  return token !== undefined && (token === '#' || isDigitCode(token.charCodeAt(0)));
}

/** "APT NO 4", "UNIT NUMBER 4": the word adds nothing after a designator. */
const NUMBER_WORDS: ReadonlySet<string> = new Set(['NO', 'NUM', 'NUMBER', 'NBR']);

/** Designators glued to their number, "APT4B" or "STE200": split when a digit follows. */
const GLUED_DESIGNATORS = ['APT', 'STE', 'UNIT', 'RM', 'BLDG', 'LOT', 'TRLR', 'SPC'];

function isDigitCode(c: number): boolean {
  return c >= 48 && c <= 57;
}

function startsWithDigit(token: string): boolean {
  return isDigitCode(token.charCodeAt(0));
}

function isFraction(token: string): boolean {
  const slash = token.indexOf('/');
  return slash > 0 && startsWithDigit(token) && isDigitCode(token.charCodeAt(slash + 1));
}

/**
 * Rewrites a leading post-office-box or rural-route phrase in place; returns the index where the
 * rest of the line begins, or -1 when the line does not start with one.
 */
function boxPrefix(t: string[]): number {
  const a = t[0];
  const b = t[1];
  const c = t[2];
  if (a === 'POST' && b === 'OFFICE' && c === 'BOX') return replacePrefix(t, 3, 'PO', 'BOX');
  if (a === 'P' && b === 'O' && c === 'BOX') return replacePrefix(t, 3, 'PO', 'BOX');
  if (a === 'POST' && b === 'BOX') return replacePrefix(t, 2, 'PO', 'BOX');
  if (a === 'PO' && b === 'BOX') return 2;
  if (a === 'POBOX' || a === 'POB') return replacePrefix(t, 1, 'PO', 'BOX');
  if ((a === 'PO' || a === 'BOX') && b !== undefined && startsWithDigit(b)) return replacePrefix(t, 1, 'PO', 'BOX');
  if (a === 'RURAL' && (b === 'ROUTE' || b === 'RTE' || b === 'RT')) return replacePrefix(t, 2, 'RR');
  if (a === 'R' && b === 'R') return replacePrefix(t, 2, 'RR');
  if (a === 'RR') return 1;
  return -1;
}

function replacePrefix(t: string[], count: number, ...words: string[]): number {
  t.splice(0, count, ...words);
  return words.length;
}

export function normaliseStreet(raw: string): string {
  const folded = fold(raw, MODE_STREET);
  if (folded === '') return '';
  const t = folded.split(' ');
  // A "#" that introduces nothing (leading, trailing or doubled) carries no unit number.
  for (let i = t.length - 1; i >= 0; i--) {
    if (t[i] === '#' && (i === 0 || i === t.length - 1 || t[i + 1] === '#')) t.splice(i, 1);
  }
  if (t.length === 0) return '';
  if (boxPrefix(t) >= 0) return t.join(' ');

  // Units: everything from the first designator on is the unit part, left as written. A
  // designator needs a house number or a name before it ("12 STE GENEVIEVE AVE" is Sainte).
  let unitStart = -1;
  for (let i = 1; i < t.length; i++) {
    const token = t[i]!;
    if (token === '#') {
      if (UNIT_DESIGNATORS.has(t[i - 1]!)) {
        t.splice(i, 1); // "UNIT #4": the designator already says what "#" would
        i--;
        continue;
      }
      t[i] = 'APT';
      if (unitStart < 0) unitStart = i;
      continue;
    }
    if (i < 2) continue;
    const designator = UNIT_DESIGNATORS.get(token);
    if (designator !== undefined && (!NEEDS_NUMBER.has(token) || startsWithDigitOrHash(t[i + 1]))) {
      t[i] = designator;
      if (unitStart < 0) unitStart = i;
      const next = t[i + 1];
      if (next !== undefined && (next === '#' || NUMBER_WORDS.has(next))) t.splice(i + 1, 1);
      continue;
    }
    for (const glued of GLUED_DESIGNATORS) {
      if (token.length > glued.length && token.startsWith(glued) && isDigitCode(token.charCodeAt(glued.length))) {
        t.splice(i, 1, glued, token.slice(glued.length));
        if (unitStart < 0) unitStart = i;
        break;
      }
    }
  }
  if (unitStart < 0) unitStart = t.length;

  // House number (with a "1/2" fraction) is skipped; name tokens are [h, end).
  let h = 0;
  if (unitStart > 0 && startsWithDigit(t[0]!)) {
    h = 1;
    if (unitStart > 1 && isFraction(t[1]!)) h = 2;
  }
  let end = unitStart;

  // Post-directional: the last name token, when something else names the street.
  if (end - h >= 2) {
    const dir = DIRECTIONALS.get(t[end - 1]!);
    if (dir !== undefined) {
      t[end - 1] = dir;
      end--;
    }
  }
  // Street suffix: the last remaining token, or the one before a route number ("HIGHWAY 9").
  let suffixAt = -1;
  if (end - h >= 2) {
    const last = t[end - 1]!;
    if (STREET_SUFFIXES.has(last)) suffixAt = end - 1;
    else if (end - h >= 2 && startsWithDigit(last) && STREET_SUFFIXES.has(t[end - 2]!)) suffixAt = end - 2;
    if (suffixAt >= 0) t[suffixAt] = STREET_SUFFIXES.get(t[suffixAt]!)!;
  }
  // Pre-directional: the first name token, only when a street name remains after it, so that
  // "12 NORTH ST" (a street called North) keeps its name.
  const nameEnd = suffixAt >= 0 ? suffixAt : end;
  if (nameEnd - h >= 2) {
    const dir = DIRECTIONALS.get(t[h]!);
    if (dir !== undefined) t[h] = dir;
  }
  return t.join(' ');
}

/**
 * The street line of an address cell, or of several lines (street and street2, FHIR's line[]),
 * normalised. Real cells carry more than the street: a care-of line, a dorm or a mail store
 * before it, a locality after it, sometimes in one cell with a newline or a comma between. The
 * street is the first line that starts with a house number (or is a PO box or rural route); a
 * unit line after it (APT 4, #12, STE 100) belongs to it; every other line is dropped, because
 * the index's copy of the same address seldom carries the same extra lines. With no numbered
 * line, the first line that is not a care-of line stands.
 */
export function normaliseStreetLines(cells: readonly string[]): string {
  const lines: string[] = [];
  for (const cell of cells) {
    for (const part of cell.split(LINE_BREAKS)) {
      const t = part.trim();
      const line = normaliseStreet(t.startsWith('#') ? `APT ${t.slice(1)}` : t);
      if (line !== '') lines.push(line);
    }
  }
  if (lines.length <= 1) return lines[0] ?? '';
  const at = lines.findIndex((l) => startsWithDigit(l) || l.startsWith('PO BOX') || l.startsWith('RR '));
  if (at < 0) return lines.find((l) => !CARE_OF.test(l)) ?? '';
  const units = [];
  for (let i = at + 1; i < lines.length && isUnitLine(lines[i]!); i++) units.push(lines[i]!);
  return units.length === 0 ? lines[at]! : normaliseStreet(`${lines[at]} ${units.join(' ')}`);
}

/** Newlines, and the commas and semicolons that stand for them in a one-line cell. */
const LINE_BREAKS = /\r\n|[\r\n,;]/;
const CARE_OF = /^(C O|CO|ATTN|ATTENTION|CARE OF|IN CARE OF) /;

function isUnitLine(line: string): boolean {
  const first = line.split(' ', 1)[0]!;
  return first === 'PMB' || (UNIT_DESIGNATORS.has(first) && !NEEDS_NUMBER.has(first));
}

/** Leading digits of a normalised street line ('' for "PO BOX 12" or a line with no number). */
export function houseNumber(street: string): string {
  let i = 0;
  while (i < street.length && isDigitCode(street.charCodeAt(i))) i++;
  return street.slice(0, i);
}
