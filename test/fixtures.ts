/** A small hand-written index and roster with every outcome, twins, a Jr/Sr pair and IIS duplicates. */
import { fhirImmunization, fhirPatient } from './helpers.ts';

const HOME = { street: '40 Elm Avenue', zip: '62702', phone: '217-555-0200' };
export const INDEX = [
  fhirPatient({ id: 'p-ava', given: 'Ava', family: 'Martinez', birthDate: '2015-03-14' }),
  fhirPatient({ id: 'p-liam', given: 'Liam', family: 'Wilson', birthDate: '2016-07-02', gender: 'male', ...HOME }),
  fhirPatient({ id: 'p-noah', given: 'Noah', family: 'Wilson', birthDate: '2016-07-02', gender: 'male', ...HOME }),
  fhirPatient({ id: 'p-jsr', given: 'James', family: 'Carter', suffix: 'Sr', birthDate: '1980-01-20', gender: 'male', street: '9 Pine Rd', phone: '217-555-0299' }),
  fhirPatient({ id: 'p-jjr', given: 'James', family: 'Carter', suffix: 'Jr', birthDate: '2010-05-05', gender: 'male', street: '9 Pine Rd', phone: '217-555-0299' }),
  fhirPatient({ id: 'p-mia', given: 'Mia', family: "O'Brien", birthDate: '2014-11-30' }),
  fhirPatient({ id: 'p-jose', given: 'José', family: 'Núñez', birthDate: '2013-02-03', gender: 'male' }),
  fhirPatient({ id: 'p-dup1', given: 'Emma', family: 'Johnson', birthDate: '2016-01-01' }),
  fhirPatient({ id: 'p-dup2', given: 'Emma', family: 'Johnson', birthDate: '2016-01-01' }),
];
export const IMMUNIZATIONS = [
  fhirImmunization('i-ava-1', 'p-ava', '08', '2015-03-15'),
  fhirImmunization('i-ava-2', 'p-ava', '20', '2015-05-15'),
  fhirImmunization('i-liam-1', 'p-liam', '08', '2016-07-03'),
  fhirImmunization('i-noah-1', 'p-noah', '08', '2016-07-03'),
];

export const HEADER = 'id,first,last,middle,dob,sex,street,zip,phone';
export const ROSTER = [
  HEADER,
  'r1,Ava,Martinez,,2015-03-14,F,12 Oak St,62701,',
  'r2,Liam,Wilson,,07/02/2016,M,40 Elm Ave,62702,(217) 555-0200',
  'r3,James,Carter Jr.,,2010-05-05,M,9 Pine Road,,',
  'r4,Mia,OBRIEN,,2014-11-30,F,,,',
  'r5,Jose,Nunez,,2013-02-03,M,,,',
  'r6,Emma,Johnson,,2016-01-01,F,,,',
  'r7,Zoe,Quintanilla-Ashworth,,2015-01-01,F,,,',
  'r8,Ava,Martinez,,2015-02-30,F,,,',
  'r9,Ava,Martinez,,2030-01-01,F,,,',
  'r10,Ava,,,2015-03-14,F,,,',
  'r11,Avery,Martinez,,2015-03-14,F,,,',
  '"=HYPERLINK(""http://x"")",Noah,Wilson,,2016-07-02,M,40 Elm Ave,62702,',
].join('\r\n');

