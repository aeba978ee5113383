/**
 * Immunization histories that follow a rough US schedule: the childhood series (HepB, RV, DTaP,
 * Hib, PCV, IPV, MMR, varicella, HepA), the adolescent platform (Tdap, HPV, MenACWY), seasonal
 * influenza, COVID-19, and the adult vaccines (Td, zoster, pneumococcal). Each vaccine is recorded
 * only once it was licensed or recommended and only after the registry started collecting
 * (1996), so adults carry few doses and young children many. Histories are derived from the
 * patient's own random stream, so they can be produced one patient at a time while writing.
 */
import { daysFromCivil, DAYS_PER_YEAR, civilFromDays } from './dates.ts';
import { Rng } from './random.ts';

/** CVX code → CDC short description. */
export const CVX: Readonly<Record<string, string>> = {
  '03': 'MMR',
  '08': 'Hep B, adolescent or pediatric',
  '10': 'IPV',
  '20': 'DTaP',
  '21': 'varicella',
  '33': 'pneumococcal polysaccharide PPV23',
  '43': 'Hep B, adult',
  '48': 'Hib (PRP-T)',
  '49': 'Hib (PRP-OMP)',
  '62': 'HPV, quadrivalent',
  '83': 'Hep A, ped/adol, 2 dose',
  '94': 'MMRV',
  '100': 'pneumococcal conjugate PCV 7',
  '110': 'DTaP-Hep B-IPV',
  '113': 'Td (adult) preservative free',
  '114': 'meningococcal MCV4P',
  '115': 'Tdap',
  '116': 'rotavirus, pentavalent',
  '119': 'rotavirus, monovalent',
  '120': 'DTaP-Hib-IPV',
  '130': 'DTaP-IPV',
  '133': 'Pneumococcal conjugate PCV 13',
  '136': 'Meningococcal MCV4O',
  '141': 'Influenza, seasonal, injectable',
  '150': 'Influenza, injectable, quadrivalent, preservative free',
  '165': 'HPV9',
  '187': 'zoster recombinant',
  '207': 'COVID-19, mRNA, LNP-S, PF, 100 mcg/0.5mL dose or 50 mcg/0.25mL dose',
  '208': 'COVID-19, mRNA, LNP-S, PF, 30 mcg/0.3 mL dose',
  '212': 'COVID-19 vaccine, vector-nr, rS-Ad26, PF, 0.5 mL',
  '213': 'SARS-COV-2 (COVID-19) vaccine, UNSPECIFIED FORMULATION',
};

export interface Dose {
  cvx: string;
  /** Day number of administration. */
  day: number;
}

/** At most this many doses per patient (keeps Immunization.ndjson near 3 kB per patient). */
export const MAX_DOSES = 20;

/** Share of patients whose history starts when they moved into the registry's area. */
const MOVED_IN = 0.2;

const d = daysFromCivil;
const IIS_START = d(1996, 1, 1);
const HEPA_ROUTINE = d(2006, 5, 1);
const RV_LICENSED = d(2006, 2, 3);
const PCV7_LICENSED = d(2000, 2, 17);
const PCV13_LICENSED = d(2010, 2, 24);
const TDAP_LICENSED = d(2005, 5, 3);
const MCV4_LICENSED = d(2005, 1, 14);
const HPV_LICENSED = d(2006, 6, 8);
const HPV9_ONLY = d(2017, 1, 1);
const ZOSTER_LICENSED = d(2017, 10, 20);
const COVID_EUA = d(2020, 12, 14);
const COVID_ADULTS = d(2021, 4, 19);
const COVID_12 = d(2021, 5, 12);
const COVID_5 = d(2021, 11, 3);
const COVID_INFANT = d(2022, 6, 18);
const QUADRIVALENT_FLU = d(2013, 8, 1);
const TRIVALENT_AGAIN = d(2024, 8, 1);

/** The immunization history of one patient, in date order, at most MAX_DOSES long. */
export function immunizationHistory(rng: Rng, birth: number, today: number): Dose[] {
  const doses: Dose[] = [];
  // Some patients moved into the registry's area later: doses given before are not on record.
  const since = Math.max(IIS_START, birth, rng.chance(MOVED_IN) ? birth + rng.int(Math.max(1, today - birth)) : birth);
  const add = (cvx: string | null, day: number): void => {
    if (cvx !== null && day >= since && day <= today) doses.push({ cvx, day });
  };
  // How closely this family follows the schedule; a few decline most vaccines.
  const compliance = rng.chance(0.04) ? 0.1 : 0.6 + 0.4 * rng.next();
  const at = (fromDays: number, toDays: number): number => birth + rng.between(fromDays, toDays);
  const series = (pick: (day: number) => string | null, windows: readonly (readonly [number, number])[]): void => {
    for (const [from, to] of windows) {
      if (!rng.chance(compliance)) continue;
      const day = at(from, to);
      add(pick(day), day);
    }
  };
  const M = 30.44;
  const Y = DAYS_PER_YEAR;

  // Infancy and early childhood. Many practices use combination vaccines, which is also why the
  // doses recorded for a fully vaccinated child stay near twenty.
  const combo = rng.next();
  const pentacel = combo < 0.35; // DTaP-Hib-IPV for the primary series and the fourth dose
  const pediarix = !pentacel && combo < 0.6; // DTaP-HepB-IPV for the primary series
  const primary: readonly (readonly [number, number])[] = [[60, 75], [120, 135], [180, 200]];
  const toddler: readonly [number, number] = [Math.round(15 * M), Math.round(18 * M)];
  const kinder: readonly [number, number] = [Math.round(4 * Y), Math.round(6 * Y)];
  add(rng.chance(0.9) ? '08' : null, at(0, 2));
  if (!pediarix) series(() => '08', [[Math.round(M), Math.round(2 * M)], [Math.round(6 * M), Math.round(18 * M)]]);
  const rv1 = rng.chance(0.3);
  series((day) => (day >= RV_LICENSED ? (rv1 ? '119' : '116') : null), rv1 ? [[60, 75], [120, 135]] : primary);
  if (pentacel) {
    series(() => '120', [...primary, toddler]);
  } else {
    series(() => (pediarix ? '110' : '20'), primary);
    series(() => '20', [toddler]);
    if (!pediarix) series(() => '10', [[60, 75], [120, 135], [Math.round(6 * M), Math.round(18 * M)]]);
    const hib = rng.chance(0.5) ? '49' : '48';
    series(() => hib, hib === '48' ? [...primary, [365, 450]] : [[60, 75], [120, 135], [365, 450]]);
  }
  series((day) => (day >= PCV13_LICENSED ? '133' : day >= PCV7_LICENSED ? '100' : null), [...primary, [365, 450]]);
  series(() => '03', [[365, 450]]);
  series(() => '21', [[365, 450]]);
  series((day) => (day >= HEPA_ROUTINE ? '83' : null), [[365, 700]]);
  if (doses.some((x) => x.cvx === '83')) series(() => '83', [[Math.round(19 * M), Math.round(30 * M)]]);
  // Kindergarten boosters: DTaP-IPV and MMRV combinations or the single vaccines.
  if (rng.chance(0.5)) series(() => '130', [kinder]);
  else {
    series(() => '20', [kinder]);
    series(() => '10', [kinder]);
  }
  if (rng.chance(0.4)) series(() => '94', [kinder]);
  else {
    series(() => '03', [kinder]);
    series(() => '21', [kinder]);
  }
  // Adolescence.
  series((day) => (day >= TDAP_LICENSED ? '115' : null), [[Math.round(11 * Y), Math.round(12.9 * Y)]]);
  const mcv = rng.chance(0.6) ? '114' : '136';
  series((day) => (day >= MCV4_LICENSED ? mcv : null), [[Math.round(11 * Y), Math.round(12.9 * Y)], [Math.round(16 * Y), Math.round(17.5 * Y)]]);
  if (rng.chance(0.75)) {
    series((day) => (day >= HPV9_ONLY ? '165' : day >= HPV_LICENSED ? '62' : null), [
      [Math.round(11 * Y), Math.round(13 * Y)],
      [Math.round(13.5 * Y), Math.round(14.5 * Y)],
    ]);
  }

  // Adulthood.
  if (rng.chance(0.08 * compliance)) {
    const start = at(Math.round(19 * Y), Math.round(59 * Y));
    add('43', start);
    add('43', start + rng.between(28, 40));
    add('43', start + rng.between(170, 200));
  }
  if (rng.chance(0.4 * compliance)) {
    const day = at(Math.round(19 * Y), Math.round(70 * Y));
    add(day >= TDAP_LICENSED ? '115' : '113', day);
    if (rng.chance(0.4)) add('113', day + rng.between(Math.round(9.5 * Y), Math.round(11 * Y)));
  }
  const age50 = birth + Math.round(50 * Y);
  if (rng.chance(0.45 * compliance)) {
    const first = Math.max(age50, ZOSTER_LICENSED) + rng.between(0, 2000);
    add('187', first);
    if (rng.chance(0.8)) add('187', first + rng.between(60, 180));
  }
  const age65 = birth + Math.round(65 * Y);
  if (rng.chance(0.55 * compliance)) add('33', age65 + rng.between(0, 1500));
  if (rng.chance(0.25 * compliance)) add('133', Math.max(age65, d(2014, 9, 1)) + rng.between(0, 900));

  // Influenza, one chance per season, recorded from the 2010–11 season on.
  const fluBase = rng.next();
  const last = civilFromDays(today).y;
  for (let season = 2010; season <= last; season++) {
    const day = d(season, 9, 10) + rng.between(0, 100);
    const age = (day - birth) / Y;
    if (age < 0.5) continue;
    const p = age < 9 ? 0.4 : age < 19 ? 0.25 : age < 50 ? 0.18 : age < 65 ? 0.28 : 0.42;
    if (rng.next() < p * (0.4 + 1.2 * fluBase) * compliance) {
      add(day >= TRIVALENT_AGAIN ? '141' : day >= QUADRIVALENT_FLU ? '150' : '141', day);
    }
  }

  // COVID-19: a primary series, a booster, some updated doses.
  const eligibleFrom = (age: number): number => (age >= 65 ? COVID_EUA + 30 : age >= 16 ? COVID_ADULTS : age >= 12 ? COVID_12 : age >= 5 ? COVID_5 : COVID_INFANT);
  const ageIn2021 = (d(2021, 6, 1) - birth) / Y;
  const pCovid = ageIn2021 < 5 ? 0.08 : ageIn2021 < 12 ? 0.3 : ageIn2021 < 18 ? 0.5 : ageIn2021 < 50 ? 0.62 : ageIn2021 < 65 ? 0.75 : 0.85;
  if (rng.chance(pCovid)) {
    const start = Math.max(eligibleFrom(ageIn2021), birth + 183) + rng.between(0, 120);
    const janssen = ageIn2021 >= 18 && rng.chance(0.07);
    const mrna = rng.chance(0.6) ? '208' : '207';
    if (janssen) add('212', start);
    else {
      add(mrna, start);
      add(mrna, start + (mrna === '208' ? rng.between(21, 35) : rng.between(28, 42)));
    }
    if (rng.chance(0.55)) add(rng.chance(0.9) ? mrna : '213', Math.max(start + 180, d(2021, 10, 1)) + rng.between(0, 150));
    for (const season of [2022, 2023, 2024, 2025, 2026]) {
      if (rng.chance(ageIn2021 >= 65 ? 0.4 : 0.15)) add(rng.chance(0.95) ? mrna : '213', d(season, 9, 10) + rng.between(0, 110));
    }
  }

  // Keep the most useful MAX_DOSES: drop influenza doses first, then any at random.
  while (doses.length > MAX_DOSES) {
    const flu: number[] = [];
    doses.forEach((x, i) => {
      if (x.cvx === '141' || x.cvx === '150') flu.push(i);
    });
    const victim = flu.length > 0 ? rng.pick(flu) : rng.int(doses.length);
    doses.splice(victim, 1);
  }
  doses.sort((a, b) => a.day - b.day || (a.cvx < b.cvx ? -1 : a.cvx > b.cvx ? 1 : 0));
  return doses;
}
