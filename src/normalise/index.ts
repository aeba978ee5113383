/**
 * The normalisation stage: pure functions that turn one partner's cell values into the canonical
 * forms of PersonFields. Every roster row and every index patient passes through these, so both
 * sides of a comparison are spelled the same way.
 */
export { normaliseName, splitSuffix, splitFullName, normaliseSuffix, nonLatinScript, type FullNameParts } from './names.ts';
export { nicknameRoots, areNicknames } from './nicknames.ts';
export { parseBirthDate, type BirthDateResult } from './dates.ts';
export { normaliseSex } from './sex.ts';
export { normaliseStreet, normaliseStreetLines, houseNumber } from './address.ts';
export { normaliseZip } from './zip.ts';
export { normaliseState } from './states.ts';
export { normalisePhone } from './phone.ts';
export { normaliseIdentifier, readIdentifier, indexIdentifierValue, US_SSN_SYSTEM, type IdentifierKind, type IdentifierReading } from './identifiers.ts';
export { normaliseMothersMaiden, normaliseBirthOrder, birthOrderFromFhir, MOTHERS_MAIDEN_NAME_URL } from './multiple-birth.ts';
export { placeholderNames, isPlaceholderStreet, isPlaceholderPhone, NO_ADDITIONS, type PlaceholderAdditions, type PlaceholderNames } from './placeholders.ts';
