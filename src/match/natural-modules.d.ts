// natural is imported by module path so its storage back ends (pg, redis, mongoose) never load;
// these paths ship no types of their own. (Its Jaro-Winkler is the reference the hand-written one
// in string-metrics.ts is tested against.)
declare module 'natural/lib/natural/distance/jaro-winkler_distance.js' {
  export default function JaroWinklerDistance(a: string, b: string, options?: { ignoreCase?: boolean }): number;
}
declare module 'natural/lib/natural/phonetics/double_metaphone.js' {
  export default class DoubleMetaphone {
    process(token: string, maxLength?: number): [string, string];
  }
}
