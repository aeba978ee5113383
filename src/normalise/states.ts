/**
 * US states and territories: the USPS two-letter code from the code itself, the full name, or the
 * traditional abbreviations people still type ("Ill.", "Calif.", "Penna.").
 */
import { normaliseName } from './names.ts';

const STATES: ReadonlyArray<readonly [string, ...string[]]> = [
  ['AL', 'ALABAMA', 'ALA'],
  ['AK', 'ALASKA', 'ALAS'],
  ['AZ', 'ARIZONA', 'ARIZ'],
  ['AR', 'ARKANSAS', 'ARK'],
  ['CA', 'CALIFORNIA', 'CALIF', 'CAL'],
  ['CO', 'COLORADO', 'COLO', 'COL'],
  ['CT', 'CONNECTICUT', 'CONN'],
  ['DE', 'DELAWARE', 'DEL'],
  ['DC', 'DISTRICT OF COLUMBIA', 'WASHINGTON DC', 'D C', 'WASH DC'],
  ['FL', 'FLORIDA', 'FLA'],
  ['GA', 'GEORGIA'],
  ['HI', 'HAWAII'],
  ['ID', 'IDAHO', 'IDA'],
  ['IL', 'ILLINOIS', 'ILL', 'ILLS'],
  ['IN', 'INDIANA', 'IND'],
  ['IA', 'IOWA'],
  ['KS', 'KANSAS', 'KAN', 'KANS'],
  ['KY', 'KENTUCKY', 'KEN', 'KENT'],
  ['LA', 'LOUISIANA'],
  ['ME', 'MAINE'],
  ['MD', 'MARYLAND'],
  ['MA', 'MASSACHUSETTS', 'MASS'],
  ['MI', 'MICHIGAN', 'MICH'],
  ['MN', 'MINNESOTA', 'MINN'],
  ['MS', 'MISSISSIPPI', 'MISS'],
  ['MO', 'MISSOURI'],
  ['MT', 'MONTANA', 'MONT'],
  ['NE', 'NEBRASKA', 'NEB', 'NEBR'],
  ['NV', 'NEVADA', 'NEV'],
  ['NH', 'NEW HAMPSHIRE', 'N H'],
  ['NJ', 'NEW JERSEY', 'N J'],
  ['NM', 'NEW MEXICO', 'N MEX', 'N M'],
  ['NY', 'NEW YORK', 'N Y'],
  ['NC', 'NORTH CAROLINA', 'N CAROLINA', 'N C'],
  ['ND', 'NORTH DAKOTA', 'N DAKOTA', 'N DAK', 'N D'],
  ['OH', 'OHIO'],
  ['OK', 'OKLAHOMA', 'OKLA'],
  ['OR', 'OREGON', 'ORE', 'OREG'],
  ['PA', 'PENNSYLVANIA', 'PENN', 'PENNA'],
  ['RI', 'RHODE ISLAND', 'R I'],
  ['SC', 'SOUTH CAROLINA', 'S CAROLINA', 'S C'],
  ['SD', 'SOUTH DAKOTA', 'S DAKOTA', 'S DAK', 'S D'],
  ['TN', 'TENNESSEE', 'TENN'],
  ['TX', 'TEXAS', 'TEX'],
  ['UT', 'UTAH'],
  ['VT', 'VERMONT'],
  ['VA', 'VIRGINIA', 'VIRG'],
  ['WA', 'WASHINGTON', 'WASH'],
  ['WV', 'WEST VIRGINIA', 'W VIRGINIA', 'W VA', 'WVA'],
  ['WI', 'WISCONSIN', 'WIS', 'WISC'],
  ['WY', 'WYOMING', 'WYO'],
  ['AS', 'AMERICAN SAMOA'],
  ['GU', 'GUAM'],
  ['MP', 'NORTHERN MARIANA ISLANDS', 'NORTHERN MARIANAS', 'CNMI'],
  ['PR', 'PUERTO RICO'],
  ['VI', 'VIRGIN ISLANDS', 'US VIRGIN ISLANDS', 'U S VIRGIN ISLANDS', 'USVI'],
  ['UM', 'UNITED STATES MINOR OUTLYING ISLANDS'],
  ['FM', 'FEDERATED STATES OF MICRONESIA', 'MICRONESIA'],
  ['MH', 'MARSHALL ISLANDS'],
  ['PW', 'PALAU'],
  // Military post offices.
  ['AA', 'ARMED FORCES AMERICAS'],
  ['AE', 'ARMED FORCES EUROPE'],
  ['AP', 'ARMED FORCES PACIFIC'],
];

const STATE_CODES = new Map<string, string>();
for (const [code, ...names] of STATES) {
  STATE_CODES.set(code, code);
  for (const name of names) STATE_CODES.set(name, code);
}

/** Two-letter code; '' for blank; null when the value is not a US state or territory. */
export function normaliseState(raw: string): string | null {
  // Fast path: a bare upper-case code, as most files send.
  const direct = raw.length === 2 ? STATE_CODES.get(raw) : undefined;
  if (direct !== undefined) return direct;
  const name = normaliseName(raw);
  if (name === '') return raw.trim() === '' ? '' : null;
  return STATE_CODES.get(name) ?? null;
}
