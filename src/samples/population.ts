/**
 * The people behind the sample files: households that share a surname, an address and a phone;
 * siblings; twins; fathers and sons who share a name (Sr, Jr, III); an age spread from newborns
 * to the nineties with a bump at school ages. Most people are patients of the IIS; the rest are
 * the people rosters carry that the IIS has never seen (newcomers, people from out of state).
 *
 * People are kept compactly (one object each, names shared with the tables) because a benchmark
 * run holds a million of them; immunizations are not kept here but derived per patient on output.
 */
import { DAYS_PER_YEAR, civilFromDays } from './dates.ts';
import { patientId } from './ids.ts';
import { HISPANIC_SURNAMES, SURNAMES, hasDiacritics, pickGiven, pickMiddle, pickTwinGiven } from './names.ts';
import type { SexCode } from './names.ts';
import { randomAddress, randomPhone } from './places.ts';
import type { Address, StreetStyle } from './places.ts';
import { Rng, WeightedTable } from './random.ts';

export interface Household {
  address: Address;
  /** How the IIS spells this household's street ("Street" or "St"). */
  streetStyle: StreetStyle;
  /** Ten digits. */
  phone: string;
  members: number[];
}

export interface Person {
  /** Position in Population.people. */
  idx: number;
  /** Position among IIS patients, or -1 when the IIS does not hold this person. */
  ordinal: number;
  /** FHIR Patient id, '' when not in the IIS. */
  id: string;
  given: string;
  middle: string;
  family: string;
  /** 'Jr', 'Sr', 'III', 'IV' or ''. */
  suffix: string;
  sex: SexCode;
  /** Day number (days since 1970-01-01). */
  birth: number;
  household: number;
  /** 1 or 2 for twins, 0 otherwise. */
  multipleBirth: number;
  /** The co-twin's idx, or -1. */
  twin: number;
  /** Everyone (self included) who shares this man's name across generations, or null. */
  namesakes: number[] | null;
  /** Ten digits: the household phone or the person's own cell. */
  phone: string;
  /** The IIS stores the name with accents folded (José → Jose). */
  asciiInIIS: boolean;
  addressInIIS: boolean;
  phoneInIIS: boolean;
  /** Riverside clinic MRN, '' when the person is not a clinic patient. */
  mrn: string;
  /** The IIS holds the MRN as an identifier. */
  mrnInIIS: boolean;
}

export interface Population {
  people: Person[];
  households: Household[];
  /** Number of IIS patients: people with ordinal 0..iisCount-1. */
  iisCount: number;
  /** IIS patients in ordinal order (people[] also holds people outside the IIS). */
  patients: Person[];
}

export interface PopulationOptions {
  seed: number;
  patients: number;
  /** At least this many people who are not in the IIS, living in households of their own. */
  outsiders: number;
  /** Reference date as a day number. */
  today: number;
}

/** Share of people in IIS households whom the IIS nonetheless does not hold. */
const NOT_REGISTERED = 0.02;
/** Twin deliveries per birth: above the US rate (≈ 1.5 %) so that about 2 % of patients are twins. */
const TWIN_DELIVERY = 0.03;
/** A father names his first son after himself. */
const JUNIOR_SON = 0.06;
/** ... more often when he is a Jr himself (the III). */
const JUNIOR_SON_OF_JUNIOR = 0.5;
/** An older man living apart has a grown son named after him. */
const GROWN_JUNIOR = 0.1;

const KIDS = new WeightedTable<number>([[1, 24], [2, 38], [3, 24], [4, 10], [5, 4]]);

interface NameSpec {
  given: string;
  middle: string;
  family: string;
  suffix: string;
  birth: number;
  namesakes: number[] | null;
}

class PopulationBuilder {
  readonly people: Person[] = [];
  readonly households: Household[] = [];
  readonly patients: Person[] = [];
  readonly rng: Rng;
  readonly #opts: PopulationOptions;
  /** While true, new people join the IIS (until it is full). */
  registering = true;

  constructor(opts: PopulationOptions) {
    this.#opts = opts;
    this.rng = new Rng(opts.seed, 'population');
  }

  get today(): number {
    return this.#opts.today;
  }

  get full(): boolean {
    return this.patients.length >= this.#opts.patients;
  }

  household(): number {
    const rng = this.rng;
    const address = randomAddress(rng);
    this.households.push({
      address,
      streetStyle: rng.chance(0.55) ? 'abbr' : 'full',
      phone: randomPhone(rng, address.town),
      members: [],
    });
    return this.households.length - 1;
  }

  person(hh: number, sex: SexCode, birth: number, names: Omit<NameSpec, 'birth'>, adult: boolean): Person {
    const rng = this.rng;
    const house = this.households[hh]!;
    const inIIS = this.registering && !this.full && !rng.chance(NOT_REGISTERED);
    const ordinal = inIIS ? this.patients.length : -1;
    const p: Person = {
      idx: this.people.length,
      ordinal,
      id: inIIS ? patientId(this.#opts.seed, ordinal) : '',
      given: names.given,
      middle: names.middle,
      family: names.family,
      suffix: names.suffix,
      sex,
      birth,
      household: hh,
      multipleBirth: 0,
      twin: -1,
      namesakes: names.namesakes,
      phone: adult && rng.chance(0.45) ? randomPhone(rng, house.address.town) : house.phone,
      asciiInIIS: hasDiacritics(names.given + names.middle + names.family) && rng.chance(0.5),
      addressInIIS: rng.chance(0.93),
      phoneInIIS: rng.chance(0.8),
      mrn: '',
      mrnInIIS: false,
    };
    if (names.namesakes) names.namesakes.push(p.idx);
    this.people.push(p);
    house.members.push(p.idx);
    if (inIIS) this.patients.push(p);
    return p;
  }

  /** A birth day number for someone aged between minAge and maxAge years today. */
  birthForAge(minAge: number, maxAge: number): number {
    const span = Math.max(1, Math.floor((maxAge - minAge) * DAYS_PER_YEAR));
    return this.today - Math.floor(minAge * DAYS_PER_YEAR) - this.rng.int(span);
  }

  ageOf(birth: number): number {
    return (this.today - birth) / DAYS_PER_YEAR;
  }

  surname(): { name: string; hispanic: boolean } {
    return SURNAMES.pick(this.rng);
  }

  /** One household, sometimes with a second one tied to it (a grown Jr's family). */
  cluster(): void {
    const r = this.rng.next();
    if (r < 0.42) this.family(true);
    else if (r < 0.52) this.family(false);
    else if (r < 0.78) this.couple();
    else this.single();
  }

  /** Parents and the children still at home. */
  family(twoParents: boolean, fatherSpec?: NameSpec): void {
    const rng = this.rng;
    const hh = this.household();
    const surname = fatherSpec ? { name: fatherSpec.family, hispanic: SURNAMES.items.some((s) => s.hispanic && s.name === fatherSpec.family) } : this.surname();
    const hispanic = surname.hispanic;
    const drawnAge = rng.normal(41, 6, 22, 58);
    const fatherBirth = fatherSpec?.birth ?? this.birthForAge(drawnAge, drawnAge + 1);
    const fatherAge = this.ageOf(fatherBirth);
    const motherAge = Math.max(19, fatherAge - rng.normal(2, 3, -4, 10));
    const motherBirth = this.today - Math.floor(motherAge * DAYS_PER_YEAR) - rng.int(365);
    const singleMother = !twoParents && !fatherSpec && rng.chance(0.85);
    const hasFather = twoParents || !!fatherSpec || !singleMother;
    const hasMother = twoParents || singleMother || !!fatherSpec;

    let father: Person | undefined;
    if (hasFather) {
      const fy = civilFromDays(fatherBirth).y;
      const given = fatherSpec?.given ?? pickGiven(rng, 'male', fy, hispanic);
      father = this.person(
        hh,
        'male',
        fatherBirth,
        {
          given,
          middle: fatherSpec?.middle ?? pickMiddle(rng, 'male', fy, hispanic, given),
          family: surname.name,
          suffix: fatherSpec?.suffix ?? '',
          namesakes: fatherSpec?.namesakes ?? null,
        },
        true,
      );
    }
    let motherFamily = surname.name;
    let maiden = '';
    if (hasMother) {
      const my = civilFromDays(motherBirth).y;
      maiden = (hispanic && rng.chance(0.6) ? HISPANIC_SURNAMES.pick(rng) : this.surname()).name;
      if (hasFather) {
        const r = rng.next();
        const keep = hispanic ? 0.35 : 0.13;
        if (r < keep) motherFamily = maiden;
        else if (r < keep + 0.1 && maiden !== surname.name) motherFamily = `${maiden}-${surname.name}`;
      }
      const given = pickGiven(rng, 'female', my, hispanic);
      this.person(hh, 'female', motherBirth, { given, middle: pickMiddle(rng, 'female', my, hispanic, given), family: motherFamily, suffix: '', namesakes: null }, true);
    }

    // Children: births from the mother's late teens, a year or more apart; those over 21 have left.
    const parentBirth = hasMother ? motherBirth : fatherBirth;
    const parentAge = this.ageOf(parentBirth);
    let kidsFamily = surname.name;
    if (singleMother && rng.chance(0.3)) kidsFamily = this.surname().name; // the children carry their father's name
    // Some Hispanic families give the children both surnames.
    const bothSurnames = hispanic && hasMother && maiden !== '' && maiden !== kidsFamily && rng.chance(0.15);
    const childFamily = bothSurnames ? (rng.chance(0.5) ? `${kidsFamily}-${maiden}` : `${kidsFamily} ${maiden}`) : kidsFamily;
    const n = KIDS.pick(rng);
    let atBirth = rng.normal(27, 5, 17, 40);
    if (atBirth > parentAge) atBirth = Math.max(17, parentAge - rng.next() * 8);
    let sonNamed = false;
    for (let k = 0; k < n && atBirth <= parentAge; k++) {
      const birth = parentBirth + Math.floor(atBirth * DAYS_PER_YEAR) + rng.int(365);
      atBirth += rng.normal(2.4, 1.0, 1.0, 7);
      if (birth > this.today) break;
      if (this.ageOf(birth) > 21.5) continue;
      const by = civilFromDays(birth).y;
      const twins = rng.chance(TWIN_DELIVERY) ? 2 : 1;
      let firstTwin: Person | undefined;
      for (let t = 0; t < twins; t++) {
        const sex: SexCode = firstTwin && rng.chance(0.6) ? firstTwin.sex : rng.chance(0.512) ? 'male' : 'female';
        const family = firstTwin ? firstTwin.family : childFamily;
        let names: Omit<NameSpec, 'birth'>;
        if (sex === 'male' && father && !sonNamed && !firstTwin && father.family === kidsFamily) {
          sonNamed = true; // only the first son is ever named after his father
          const chance = father.suffix === 'Jr' ? JUNIOR_SON_OF_JUNIOR : JUNIOR_SON;
          if (rng.chance(chance)) {
            names = this.namesake(father);
          } else {
            names = this.childNames(sex, by, hispanic, family);
          }
        } else if (firstTwin) {
          const given = pickTwinGiven(rng, firstTwin.given, sex, by, hispanic);
          names = { given, middle: pickMiddle(rng, sex, by, hispanic, given), family, suffix: '', namesakes: null };
        } else {
          names = this.childNames(sex, by, hispanic, family);
        }
        const child = this.person(hh, sex, birth, names, false);
        if (firstTwin) {
          firstTwin.multipleBirth = 1;
          child.multipleBirth = 2;
          firstTwin.twin = child.idx;
          child.twin = firstTwin.idx;
        } else if (twins === 2) {
          firstTwin = child;
        }
      }
    }
  }

  childNames(sex: SexCode, birthYear: number, hispanic: boolean, family: string): Omit<NameSpec, 'birth'> {
    const given = pickGiven(this.rng, sex, birthYear, hispanic);
    return { given, middle: pickMiddle(this.rng, sex, birthYear, hispanic, given), family, suffix: '', namesakes: null };
  }

  /** The names of a son named after his father; the father becomes Sr (or stays unsuffixed). */
  namesake(father: Person): Omit<NameSpec, 'birth'> {
    const rng = this.rng;
    if (!father.namesakes) father.namesakes = [father.idx];
    let suffix: string;
    if (father.suffix === 'Jr') suffix = 'III';
    else if (father.suffix === 'III') suffix = 'IV';
    else {
      suffix = 'Jr';
      if (father.suffix === '' && rng.chance(0.55)) father.suffix = 'Sr';
    }
    return { given: father.given, middle: father.middle, family: father.family, suffix, namesakes: father.namesakes };
  }

  /** Two adults without children at home, often older. */
  couple(): void {
    const rng = this.rng;
    const hh = this.household();
    const older = rng.chance(0.8);
    const age = older ? (rng.chance(0.6) ? 50 + 42 * rng.next() : 50 + 20 * rng.next()) : rng.normal(34, 10, 22, 60);
    const headBirth = this.birthForAge(age, age + 1);
    const surname = this.surname();
    const sameSex = rng.chance(0.04);
    const headSex: SexCode = rng.chance(0.5) ? 'male' : 'female';
    const partnerSex: SexCode = sameSex ? headSex : headSex === 'male' ? 'female' : 'male';
    const partnerAge = Math.max(19, age + rng.normal(0, 3, -8, 8));
    const partnerBirth = this.birthForAge(partnerAge, partnerAge + 1);
    const head = this.adult(hh, headSex, headBirth, surname.name, surname.hispanic);
    const partnerFamily = !sameSex && rng.chance(0.82) ? surname.name : this.surname().name;
    this.adult(hh, partnerSex, partnerBirth, partnerFamily, surname.hispanic);
    this.maybeGrownJunior(head);
  }

  /** One adult living alone. */
  single(): void {
    const rng = this.rng;
    const hh = this.household();
    const age = rng.chance(0.35) ? rng.normal(27, 5, 18, 40) : 40 + 52 * (1 - Math.sqrt(rng.next()));
    const sex: SexCode = rng.chance(0.48) ? 'male' : 'female';
    const surname = this.surname();
    const p = this.adult(hh, sex, this.birthForAge(age, age + 1), surname.name, surname.hispanic);
    this.maybeGrownJunior(p);
  }

  adult(hh: number, sex: SexCode, birth: number, family: string, hispanic: boolean): Person {
    const by = civilFromDays(birth).y;
    const given = pickGiven(this.rng, sex, by, hispanic);
    return this.person(hh, sex, birth, { given, middle: pickMiddle(this.rng, sex, by, hispanic, given), family, suffix: '', namesakes: null }, true);
  }

  /** An older man's grown son who bears his name and has a household of his own. */
  maybeGrownJunior(father: Person): void {
    const rng = this.rng;
    const age = this.ageOf(father.birth);
    if (father.sex !== 'male' || age < 45 || !rng.chance(GROWN_JUNIOR)) return;
    const gap = rng.normal(29, 4, 20, Math.min(42, age - 20));
    const birth = father.birth + Math.floor(gap * DAYS_PER_YEAR) + rng.int(365);
    if (birth > this.today - 20 * DAYS_PER_YEAR) return;
    const names = this.namesake(father);
    const spec: NameSpec = { ...names, birth };
    if (rng.chance(0.6)) this.family(true, spec);
    else {
      const hh = this.household();
      this.person(hh, 'male', birth, names, true);
    }
  }
}

/** Generates households until the IIS holds `patients` people, then `outsiders` more outside it. */
export function generatePopulation(opts: PopulationOptions): Population {
  const b = new PopulationBuilder(opts);
  while (!b.full) b.cluster();
  b.registering = false;
  const start = b.people.length;
  while (b.people.length - start < opts.outsiders) b.cluster();
  // A namesake chain whose members are all outside the IIS needs no link; drop lone chains.
  for (const p of b.people) if (p.namesakes && p.namesakes.length < 2) p.namesakes = null;
  return { people: b.people, households: b.households, iisCount: b.patients.length, patients: b.patients };
}
