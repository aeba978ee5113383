/**
 * Towns, streets and phone numbers for the sample population: central Illinois around
 * Springfield, plus a few towns across the state lines (Missouri, Indiana, Iowa, Kentucky), so
 * a matcher meets more than one state and ZIP codes that repeat across a town's streets.
 */
import type { Rng } from './random.ts';
import { WeightedTable } from './random.ts';

export interface Town {
  city: string;
  state: string;
  zips: readonly string[];
  areaCode: string;
}

// [city, state, ZIPs, area code, relative population]
const TOWN_ROWS: readonly (readonly [string, string, string, string, number])[] = [
  ['Springfield', 'IL', '62701 62702 62703 62704 62707 62711 62712', '217', 115],
  ['Chatham', 'IL', '62629', '217', 13],
  ['Rochester', 'IL', '62563', '217', 4],
  ['Riverton', 'IL', '62561', '217', 3],
  ['Sherman', 'IL', '62684', '217', 4],
  ['Auburn', 'IL', '62615', '217', 5],
  ['Petersburg', 'IL', '62675', '217', 2],
  ['Jacksonville', 'IL', '62650', '217', 18],
  ['Lincoln', 'IL', '62656', '217', 13],
  ['Taylorville', 'IL', '62568', '217', 11],
  ['Decatur', 'IL', '62521 62522 62526', '217', 70],
  ['Champaign', 'IL', '61820 61821 61822', '217', 88],
  ['Urbana', 'IL', '61801 61802', '217', 38],
  ['Bloomington', 'IL', '61701 61704 61705', '309', 78],
  ['Normal', 'IL', '61761', '309', 52],
  ['Peoria', 'IL', '61603 61604 61614 61615', '309', 110],
  ['Pekin', 'IL', '61554', '309', 32],
  ['Quincy', 'IL', '62301 62305', '217', 40],
  ['Danville', 'IL', '61832 61834', '217', 29],
  ['Mattoon', 'IL', '61938', '217', 17],
  ['Charleston', 'IL', '61920', '217', 17],
  ['Effingham', 'IL', '62401', '217', 12],
  ['Carlinville', 'IL', '62626', '217', 5],
  ['Litchfield', 'IL', '62056', '217', 7],
  ['Pana', 'IL', '62557', '217', 5],
  ['Beardstown', 'IL', '62618', '217', 6],
  ['Havana', 'IL', '62644', '309', 3],
  ['Virden', 'IL', '62690', '217', 3],
  ['Girard', 'IL', '62640', '217', 2],
  ['Pawnee', 'IL', '62558', '217', 3],
  ['Athens', 'IL', '62613', '217', 2],
  ['Mount Pulaski', 'IL', '62548', '217', 2],
  ['Clinton', 'IL', '61727', '217', 7],
  ['Shelbyville', 'IL', '62565', '217', 5],
  ['Saint Louis', 'MO', '63101 63104 63110 63116 63118', '314', 30],
  ['Hannibal', 'MO', '63401', '573', 8],
  ['Terre Haute', 'IN', '47802 47803 47807', '812', 12],
  ['Davenport', 'IA', '52803 52804', '563', 10],
  ['Paducah', 'KY', '42001 42003', '270', 6],
];

export const TOWNS: readonly Town[] = TOWN_ROWS.map(([city, state, zips, areaCode]) => ({
  city,
  state,
  zips: zips.split(' '),
  areaCode,
}));
const TOWN_TABLE = new WeightedTable(TOWN_ROWS.map(([, , , , weight], i) => [i, weight] as const));

const STREET_NAMES: readonly string[] = [
  'Oak', 'Maple', 'Elm', 'Walnut', 'Cedar', 'Pine', 'Chestnut', 'Hickory', 'Willow', 'Sycamore',
  'Birch', 'Ash', 'Cherry', 'Locust', 'Spruce', 'Main', 'Washington', 'Lincoln', 'Jefferson',
  'Adams', 'Madison', 'Monroe', 'Jackson', 'Grant', 'Douglas', 'Park', 'Lake', 'Hill', 'Ridge',
  'Meadow', 'Prairie', 'Forest', 'Highland', 'Sunset', 'Country Club', 'Church', 'School', 'Mill',
  'Market', 'Center', 'Railroad', 'Union', 'College', 'University', 'State', 'Broadway', 'Vine',
  'Spring', 'Grand', 'Wabash', 'Illinois', 'Ohio', 'Kentucky', 'Pleasant', 'Green', 'Edwards',
  'Lawrence', 'Cook', 'Wood', 'Stanford', 'Chatham', 'Bruns', 'Wiggins', 'Koke Mill', 'Iles',
  'MacArthur', 'Veterans', 'Dirksen', 'Clear Lake', 'Stevenson', 'Outer Park', 'Lindbergh',
  'Archer Elevator', 'Bradfordton', 'Wanda', 'Fox Run', 'Deer Creek', 'Quail Hollow', 'Timber Ridge',
  '1st', '2nd', '3rd', '4th', '5th', '6th', '7th', '8th', '9th', '10th', '11th', '12th',
];

// [full, USPS abbreviation, relative frequency]
const STREET_SUFFIXES: readonly (readonly [string, string, number])[] = [
  ['Street', 'St', 34], ['Avenue', 'Ave', 18], ['Road', 'Rd', 10], ['Drive', 'Dr', 14],
  ['Lane', 'Ln', 6], ['Court', 'Ct', 6], ['Boulevard', 'Blvd', 3], ['Place', 'Pl', 3],
  ['Way', 'Way', 2], ['Circle', 'Cir', 2], ['Parkway', 'Pkwy', 1], ['Terrace', 'Ter', 1],
  ['Trail', 'Trl', 1],
];
const SUFFIX_TABLE = new WeightedTable(STREET_SUFFIXES.map((s, i) => [i, s[2]] as const));

const DIRECTIONS: readonly (readonly [string, string])[] = [
  ['North', 'N'], ['South', 'S'], ['East', 'E'], ['West', 'W'],
];

// [full, abbreviation]
const UNIT_KINDS: readonly (readonly [string, string])[] = [
  ['Apartment', 'Apt'], ['Unit', 'Unit'], ['Lot', 'Lot'], ['#', '#'],
];

/** A postal address, kept as parts so that each output can spell it its own way. */
export interface Address {
  number: number;
  /** Index into DIRECTIONS, or -1. */
  dir: number;
  street: number;
  suffix: number;
  /** Index into UNIT_KINDS, or -1. */
  unitKind: number;
  unit: string;
  town: number;
  zip: string;
}

/** A new address, in a chosen town or one drawn by population. */
export function randomAddress(rng: Rng, town = TOWN_TABLE.pick(rng)): Address {
  const apartment = rng.chance(0.14);
  return {
    number: rng.chance(0.5) ? rng.between(100, 2999) : rng.between(1, 9899),
    dir: rng.chance(0.15) ? rng.int(DIRECTIONS.length) : -1,
    street: rng.int(STREET_NAMES.length),
    suffix: SUFFIX_TABLE.pick(rng),
    unitKind: apartment ? (rng.chance(0.75) ? 0 : rng.int(UNIT_KINDS.length)) : -1,
    unit: apartment ? (rng.chance(0.7) ? String(rng.between(1, 40)) : rng.pick(['A', 'B', 'C', 'D', '1A', '2B', '3C'])) : '',
    town,
    zip: rng.pick(TOWNS[town]!.zips),
  };
}

/** A different address: another street in the same town, or another town altogether. */
export function movedAddress(rng: Rng, from: Address): Address {
  for (let attempt = 0; attempt < 10; attempt++) {
    const to = rng.chance(0.5) ? randomAddress(rng, from.town) : randomAddress(rng);
    if (to.street !== from.street || to.number !== from.number) return to;
  }
  return { ...from, number: from.number + 1 + rng.int(50) };
}

export type StreetStyle = 'full' | 'abbr';

/** "12 N Oak St" (abbr) or "12 North Oak Street" (full), without the unit. */
export function streetLine(a: Address, style: StreetStyle): string {
  const [fullSuffix, abbrSuffix] = STREET_SUFFIXES[a.suffix]!;
  const dir = a.dir < 0 ? '' : `${DIRECTIONS[a.dir]![style === 'full' ? 0 : 1]} `;
  return `${a.number} ${dir}${STREET_NAMES[a.street]} ${style === 'full' ? fullSuffix : abbrSuffix}`;
}

/** "Apt 4", "Apartment 4", "# 4", or '' when there is no unit. */
export function unitLine(a: Address, style: StreetStyle): string {
  if (a.unitKind < 0) return '';
  const [full, abbr] = UNIT_KINDS[a.unitKind]!;
  return `${style === 'full' ? full : abbr} ${a.unit}`;
}

export function townOf(a: Address): Town {
  return TOWNS[a.town]!;
}

/** A ten-digit phone number in the town's area code; exchanges avoid N11 and 555. */
export function randomPhone(rng: Rng, town: number): string {
  let exchange = rng.between(201, 989);
  if (exchange % 100 === 11 || exchange === 555) exchange += 1;
  return `${TOWNS[town]!.areaCode}${exchange}${String(rng.int(10000)).padStart(4, '0')}`;
}

/** Ten digits shown as "217-555-0134", "(217) 555-0134", "217.555.0134" or "2175550134". */
export function formatPhone(digits: string, style: 'dash' | 'paren' | 'dot' | 'plain'): string {
  if (digits.length !== 10) return digits;
  const a = digits.slice(0, 3);
  const b = digits.slice(3, 6);
  const c = digits.slice(6);
  switch (style) {
    case 'dash':
      return `${a}-${b}-${c}`;
    case 'paren':
      return `(${a}) ${b}-${c}`;
    case 'dot':
      return `${a}.${b}.${c}`;
    case 'plain':
      return digits;
  }
}
