/**
 * The normalisation stage: pure functions that turn one partner's cell values into the canonical
 * forms of PersonFields. Every roster row and every index patient passes through these, so both
 * sides of a comparison are spelled the same way.
 */
export { normaliseName, splitSuffix, splitFullName, normaliseSuffix, nonLatinScript, type FullNameParts } from './names.ts';
export { nicknameRoots, areNicknames } from './nicknames.ts';
export { parseBirthDate, type BirthDateResult } from './dates.ts';
export { normaliseSex } from './sex.ts';
export { normaliseStreet, houseNumber } from './address.ts';
export { normaliseZip } from './zip.ts';
export { normaliseState } from './states.ts';
export { normalisePhone } from './phone.ts';
export { normaliseIdentifier } from './identifiers.ts';
