/**
 * Frequency-weighted name tables for the sample population. Surnames follow a Zipf-like curve
 * shaped on the US Census 2010 surname list (SMITH ≈ 0.8 % of people, rank 100 ≈ 0.08 %), so common
 * surnames repeat a lot, as they do in a real registry; a long tail of rarer surnames keeps
 * chance collisions at a million patients close to what a registry of that size sees. Given names
 * carry an era (their popularity shifts with birth year) and Hispanic names keep their accents
 * (José, María, Sofía) as a registry that stores UTF-8 would.
 */
import { Rng, WeightedTable } from './random.ts';

export type SexCode = 'male' | 'female';

/** Birth-year era of a given name's popularity: o(lder) before 1965, m(iddle), y(ounger) after 1995, a(ny). */
type Era = 'o' | 'm' | 'y' | 'a';

// ---------------------------------------------------------------------------------------------
// Surnames, most common first. `h:` marks surnames that make a household Hispanic for given-name
// choice. Punctuated and multi-word surnames (O'Brien, De La Cruz) sit at realistic ranks.
const HEAD_SURNAMES: readonly string[] = [
  'Smith', 'Johnson', 'Williams', 'Brown', 'Jones', 'h:Garcia', 'Miller', 'Davis', 'h:Rodriguez',
  'h:Martinez', 'h:Hernandez', 'h:Lopez', 'h:Gonzalez', 'Wilson', 'Anderson', 'Thomas', 'Taylor',
  'Moore', 'Jackson', 'Martin', 'Lee', 'h:Perez', 'Thompson', 'White', 'Harris', 'h:Sanchez',
  'Clark', 'h:Ramirez', 'Lewis', 'Robinson', 'Walker', 'Young', 'Allen', 'King', 'Wright', 'Scott',
  'h:Torres', 'Nguyen', 'Hill', 'h:Flores', 'Green', 'Adams', 'Nelson', 'Baker', 'Hall',
  'h:Rivera', 'Campbell', 'Mitchell', 'Carter', 'Roberts', 'h:Gomez', 'Phillips', 'Evans',
  'Turner', 'h:Diaz', 'Parker', 'h:Cruz', 'Edwards', 'Collins', 'h:Reyes', 'Stewart', 'Morris',
  'h:Morales', 'Murphy', 'Cook', 'Rogers', 'h:Gutierrez', 'h:Ortiz', 'Morgan', 'Cooper',
  'Peterson', 'Bailey', 'Reed', 'Kelly', 'Howard', 'h:Ramos', 'Kim', 'Cox', 'Ward', 'Richardson',
  'Watson', 'Brooks', 'h:Chavez', 'Wood', 'James', 'Bennett', 'Gray', 'h:Mendoza', 'h:Ruiz',
  'Hughes', 'Price', 'h:Alvarez', 'h:Castillo', 'Sanders', 'Patel', 'Myers', 'Long', 'Ross',
  'Foster', 'h:Jimenez', 'Powell', 'Jenkins', 'Perry', 'Russell', 'Sullivan', 'Bell', 'Coleman',
  'Butler', 'Henderson', 'Barnes', 'h:Gonzales', 'Fisher', 'h:Vasquez', 'Simmons', 'h:Romero',
  'Jordan', 'Patterson', 'Alexander', 'Hamilton', 'Graham', 'Reynolds', 'Griffin', 'Wallace',
  'h:Moreno', 'West', 'Cole', 'Hayes', 'Bryant', 'h:Herrera', 'Gibson', 'Ellis', 'Tran',
  'h:Medina', 'h:Aguilar', 'Stevens', 'Murray', 'Ford', 'h:Castro', 'Marshall', 'Owens',
  'Harrison', 'h:Fernandez', 'McDonald', 'Woods', 'Washington', 'Kennedy', 'Wells', 'h:Vargas',
  'Henry', 'Chen', 'Freeman', 'Webb', 'Tucker', 'h:Guzman', 'Burns', 'Crawford', 'Olson',
  'Simpson', 'Porter', 'Hunter', 'Gordon', 'h:Mendez', 'h:Silva', 'Shaw', 'Snyder', 'Mason',
  'Dixon', 'h:Muñoz', 'Hunt', 'Hicks', 'Holmes', 'Palmer', 'Wagner', 'Black', 'Robertson', 'Boyd',
  'Rose', 'Stone', 'h:Salazar', 'Fox', 'Warren', 'Mills', 'Meyer', 'Rice', 'Schmidt', 'h:Garza',
  'Daniels', 'Ferguson', 'Nichols', 'Stephens', 'h:Soto', 'Weaver', 'Ryan', 'Gardner', 'Payne',
  'Grant', 'Dunn', 'Kelley', 'Spencer', 'Hawkins', 'Arnold', 'Pierce', 'h:Vazquez', 'Hansen',
  'Peters', 'h:Santos', 'Hart', 'Bradley', 'Knight', 'Elliott', 'Cunningham', 'Duncan',
  'Armstrong', 'Hudson', 'Carroll', 'Lane', 'Riley', 'Andrews', 'h:Alvarado', 'Ray', 'h:Delgado',
  'Berry', 'Perkins', 'Hoffman', 'Johnston', 'Matthews', 'h:Peña', 'Richards', 'h:Contreras',
  'Willis', 'Carpenter', 'Lawrence', 'h:Sandoval', 'h:Guerrero', 'George', 'Chapman', 'h:Rios',
  'h:Estrada', 'h:Ortega', 'Watkins', 'Greene', 'h:Núñez', 'Wheeler', 'h:Valdez', 'Harper', 'Burke',
  'Larson', 'h:Santiago', 'h:Maldonado', 'Morrison', 'Franklin', 'Carlson', 'Austin', 'h:Dominguez',
  'Carr', 'Lawson', 'Jacobs', "O'Brien", 'Lynch', 'Singh', 'h:Vega', 'Bishop', 'Montgomery',
  'Oliver', 'Jensen', 'Harvey', 'Williamson', 'Gilbert', 'Dean', 'Sims', 'h:Espinoza', 'Howell',
  'Li', 'Wong', 'Reid', 'Hanson', 'Le', 'McCoy', 'Garrett', 'Burton', 'Fuller', 'Wang', 'Weber',
  'Welch', 'h:Rojas', 'Lucas', 'h:Márquez', 'Fields', 'Park', 'Yang', 'Little', 'Banks',
  'h:Padilla', 'Day', 'Walsh', 'Bowman', 'Schultz', 'h:Luna', 'Fowler', 'h:Mejia', 'Davidson',
  'h:Acosta', 'Brewer', 'May', 'Holland', 'h:Juarez', 'Newman', 'Pearson', 'Curtis', 'h:Cortez',
  'Douglas', 'Schneider', 'Joseph', 'Barrett', 'h:Navarro', 'h:Figueroa', 'Keller', 'h:Ávila',
  'Wade', 'h:Molina', 'Stanley', 'Hopkins', 'h:Campos', 'Barnett', 'Bates', 'Chambers',
  'Caldwell', 'Beck', 'Lambert', 'h:Miranda', 'Byrd', 'Craig', 'h:Ayala', 'Lowe', 'Frazier',
  'Powers', 'Neal', 'Leonard', 'Gregory', 'h:Carrillo', 'Sutton', 'Fleming', 'Rhodes', 'Shelton',
  'Schwartz', 'Norris', 'Jennings', 'Watts', 'h:Duran', 'Walters', 'Cohen', 'McDaniel', 'Moran',
  'Parks', 'Steele', 'Vaughn', 'Becker', 'Holt', 'h:De La Cruz', "O'Connor", 'h:Ibáñez', 'Van Der Berg',
  "O'Neill", 'h:Del Rosario', 'McKenzie', 'MacDonald', "D'Angelo", 'h:De Leon', 'St. John',
  'Van Dyke', 'h:Domínguez', 'h:Calderón', 'h:León', 'h:Beltrán', 'h:Cortés', 'Côté', 'Bélanger',
  "O'Donnell", 'La Rosa', 'h:De Jesus', 'Du Bois',
];

// A tail of less common real surnames, drawn uniformly.
const TAIL_SURNAMES: readonly string[] = [
  'Abernathy', 'Ackerman', 'Albrecht', 'Amundsen', 'Appleby', 'Arbogast', 'Atwood', 'Babcock',
  'Bachman', 'Bader', 'Baumgartner', 'Beasley', 'Beckwith', 'Benoit', 'Bergstrom', 'Bertolini',
  'Blankenship', 'Bollinger', 'Bouchard', 'Brandt', 'Brenneman', 'Brunner', 'Buchanan', 'Burkhart',
  'Cabrera', 'Calloway', 'Cardenas', 'Castellano', 'Chandler', 'Chisholm', 'Cisneros', 'Conley',
  'Costello', 'Crowley', 'Cuevas', 'Dahl', 'Dalton', 'Delacroix', 'DeMarco', 'Dietrich', 'Dobson',
  'Donahue', 'Dorsey', 'Drummond', 'Dubois', 'Eberhardt', 'Eckert', 'Ellsworth', 'Engstrom',
  'Esposito', 'Faulkner', 'Fenwick', 'Finnegan', 'Fitzgerald', 'Flanagan', 'Forsythe', 'Friedman',
  'Fuentes', 'Gallagher', 'Galloway', 'Gaspard', 'Giordano', 'Goldberg', 'Greco', 'Grimes',
  'Gustafson', 'Haas', 'Hackett', 'Halvorsen', 'Hargrove', 'Hartmann', 'Hatfield', 'Heinz',
  'Hendricks', 'Hinojosa', 'Hoang', 'Hollister', 'Horvath', 'Huber', 'Ingram', 'Iverson',
  'Jablonski', 'Janssen', 'Jaramillo', 'Kaminski', 'Kaufman', 'Keane', 'Kowalczyk', 'Kowalski',
  'Krause', 'Kruger', 'Lachance', 'Landry', 'Larkin', 'Leblanc', 'Lindqvist', 'Lombardi',
  'Lundgren', 'Macias', 'Maguire', 'Malone', 'Mancini', 'Marchetti', 'Mattingly', 'McAllister',
  'McBride', 'McCormick', 'McGowan', 'McIntyre', 'McLaughlin', 'Mendel', 'Messina', 'Moffett',
  'Montoya', 'Mueller', 'Nakamura', 'Novak', 'Nowak', 'Ochoa', 'Oyelaran', 'Pacheco', 'Pappas',
  'Pellegrino', 'Petrov', 'Pham', 'Pulaski', 'Quintero', 'Radcliffe', 'Ramsey', 'Reinhardt',
  'Rinaldi', 'Rothman', 'Rutledge', 'Sato', 'Schaefer', 'Schroeder', 'Serrano', 'Shapiro',
  'Sorensen', 'Stahl', 'Stoltzfus', 'Strickland', 'Szymanski', 'Tanaka', 'Thibodeaux', 'Trujillo',
  'Underwood', 'Valencia', 'Vance', 'Villanueva', 'Vogel', 'Voss', 'Wadsworth', 'Weiss',
  'Whitaker', 'Wojcik', 'Yoder', 'Zamora', 'Zeller', 'Zielinski', 'Zimmerman', 'Okafor',
  'Adeyemi', 'Mensah', 'Osei', 'Haddad', 'Khoury', 'Nasser', 'Ivanova', 'Kozlov', 'Yilmaz',
];

const HISPANIC_TAIL: ReadonlySet<string> = new Set([
  'Cabrera', 'Cardenas', 'Cisneros', 'Cuevas', 'Fuentes', 'Hinojosa', 'Jaramillo', 'Macias', 'Montoya',
  'Ochoa', 'Pacheco', 'Quintero', 'Serrano', 'Trujillo', 'Valencia', 'Villanueva', 'Zamora',
]);

// Halves of English-style compound surnames (Ashford, Blackwood, Thornbury) for a wider tail.
const COMPOUND_HEADS: readonly string[] = [
  'Ash', 'Black', 'Brad', 'Brook', 'Crane', 'Dun', 'East', 'Fair', 'Fox', 'Green', 'Hart', 'Hol',
  'Kirk', 'Lang', 'Mar', 'Mill', 'Nor', 'Oak', 'Pem', 'Red', 'Rid', 'Ros', 'Shel', 'Stan', 'Stock',
  'Thorn', 'Wake', 'Wal', 'West', 'Whit', 'Win', 'Wood', 'Al', 'Bar', 'Bel', 'Cal', 'Craw', 'Dal',
  'Ed', 'Gar', 'Hal', 'Her', 'Lan', 'Lind', 'Ran', 'Sher', 'Sut', 'Tal', 'Wil', 'Har',
];
const COMPOUND_TAILS: readonly string[] = [
  'ford', 'ley', 'ton', 'wood', 'field', 'well', 'by', 'more', 'worth', 'man', 'dale', 'mont',
  'combe', 'land', 'stead', 'bury', 'ham', 'ridge', 'wick',
];

export interface Surname {
  name: string;
  hispanic: boolean;
}

function buildSurnames(): WeightedTable<Surname> {
  const entries: [Surname, number][] = [];
  let headTotal = 0;
  HEAD_SURNAMES.forEach((raw, i) => {
    const hispanic = raw.startsWith('h:');
    const name = hispanic ? raw.slice(2) : raw;
    // Shaped on the 2010 census: rank 1 ≈ 900, rank 10 ≈ 430, rank 100 ≈ 90, rank 300 ≈ 40.
    const weight = 900 / Math.pow(1 + i / 6, 0.8);
    headTotal += weight;
    entries.push([{ name, hispanic }, weight]);
  });
  const tail: string[] = [...TAIL_SURNAMES];
  for (const head of COMPOUND_HEADS) for (const end of COMPOUND_TAILS) tail.push(head + end);
  const seen = new Set(entries.map(([s]) => s.name));
  const uniqueTail = tail.filter((name) => !seen.has(name) && (seen.add(name), true));
  // The tail holds about a fifth of all people.
  const tailWeight = headTotal / 4 / uniqueTail.length;
  for (const name of uniqueTail) entries.push([{ name, hispanic: HISPANIC_TAIL.has(name) }, tailWeight]);
  return new WeightedTable(entries);
}

export const SURNAMES: WeightedTable<Surname> = buildSurnames();
/** Surnames of Hispanic origin only, for second surnames in Hispanic families. */
export const HISPANIC_SURNAMES: WeightedTable<Surname> = new WeightedTable(
  SURNAMES.items.filter((s) => s.hispanic).map((s, i) => [s, 100 / (1 + i / 4)] as const),
);

// ---------------------------------------------------------------------------------------------
// Given names: "Name weight era".
const MALE_NAMES = `
James 90 a|John 85 o|Robert 85 o|Michael 90 m|William 75 a|David 80 m|Richard 50 o|Joseph 55 a
Thomas 50 o|Charles 45 o|Christopher 60 m|Daniel 55 a|Matthew 50 m|Anthony 40 a|Mark 35 m
Donald 30 o|Steven 35 m|Paul 30 o|Andrew 35 m|Joshua 40 m|Kenneth 25 o|Kevin 30 m|Brian 30 m
George 25 o|Timothy 25 m|Ronald 25 o|Edward 22 o|Jason 30 m|Jeffrey 25 m|Ryan 28 m|Jacob 35 y
Gary 18 o|Nicholas 25 m|Eric 25 m|Jonathan 25 m|Stephen 20 o|Larry 15 o|Justin 22 m|Scott 18 m
Brandon 25 m|Benjamin 28 y|Samuel 22 y|Gregory 15 o|Alexander 28 y|Frank 15 o|Patrick 15 m
Raymond 15 o|Jack 20 y|Dennis 12 o|Jerry 12 o|Tyler 20 m|Aaron 15 m|Adam 15 m|Nathan 18 y
Henry 18 y|Douglas 10 o|Zachary 15 m|Peter 10 o|Kyle 15 m|Ethan 25 y|Walter 8 o|Noah 28 y
Jeremy 12 m|Christian 15 y|Keith 8 o|Roger 8 o|Terry 8 o|Austin 12 y|Sean 12 m|Gerald 8 o
Carl 8 o|Harold 6 o|Dylan 14 y|Arthur 6 o|Lawrence 7 o|Jordan 12 y|Jesse 8 m|Bryan 8 m|Billy 5 o
Bruce 6 o|Gabriel 14 y|Logan 15 y|Albert 5 o|Willie 5 o|Alan 6 o|Eugene 5 o|Russell 5 o
Vincent 6 m|Bobby 5 o|Mason 18 y|Liam 25 y|Elijah 18 y|Oliver 15 y|Lucas 15 y|Aiden 14 y
Ayden 6 y|Jayden 12 y|Jaden 5 y|Carter 10 y|Owen 12 y|Wyatt 10 y|Caleb 12 y|Isaac 10 y
Hunter 8 y|Connor 8 y|Landon 7 y|Brayden 6 y|Evan 8 y|Jackson 12 y|Grayson 7 y|Levi 8 y
Lincoln 6 y|Theodore 8 y|Hudson 5 y|Easton 4 y|Brendan 4 m|Julian 8 y|Carson 5 y|Cameron 8 m
Colton 5 y|Chase 5 y|Cody 6 m|Travis 6 m|Derek 5 m|Shawn 5 m|Dustin 5 m|Marcus 6 m|Jamal 4 m
Darnell 3 m|DeShawn 3 m|Andre 5 m|Malik 4 y|Terrell 3 m|Tyrone 3 o|Xavier 6 y|Dominic 6 y|Ian 6 m
Trevor 5 m|Garrett 4 m|Nathaniel 6 m|Theo 3 y|Earl 3 o|Ralph 4 o|Howard 4 o|Fred 4 o
Leonard 4 o|Wayne 4 o|Dale 4 o|Glenn 3 o|Curtis 4 m|Craig 5 m|Todd 5 m|Chad 5 m|Troy 4 m
Shane 4 m|Corey 5 m|Minh 2 a|Wei 2 a|Raj 1 a|Mohammed 3 y|Omar 3 y|Ali 2 y|René 2 o|André 2 m`;

const HISPANIC_MALE_NAMES = `
José 40 a|Juan 35 a|Luis 28 a|Carlos 28 a|Jesús 15 a|Miguel 22 a|Jorge 15 a|Francisco 14 o
Antonio 14 o|Alejandro 15 m|Manuel 12 a|Pedro 8 o|Ricardo 8 m|Javier 10 m|Fernando 8 m
Roberto 8 o|Rafael 8 a|Eduardo 8 m|Raúl 7 m|Mario 7 o|Sergio 6 m|Héctor 6 o|Andrés 6 y|Ángel 10 y
Diego 10 y|Mateo 12 y|Santiago 10 y|Sebastián 10 y|Matías 6 y|Emiliano 6 y|Leonardo 6 y
Adrián 7 y|Julián 5 y|Joaquín 5 y|Martín 5 y|Rubén 5 m|Óscar 5 m|Iván 5 m|Ramón 5 o|Enrique 6 o
Guillermo 5 o|Ignacio 3 o|Alfredo 4 o|Armando 4 o|Arturo 4 o|Salvador 3 o|Gerardo 4 m
Rodrigo 4 m|Emmanuel 5 y|Josué 4 y|Gael 5 y|Daniel 10 a|Gabriel 8 y|David 6 a|Adrian 4 m`;

const FEMALE_NAMES = `
Mary 80 o|Patricia 50 o|Jennifer 55 m|Linda 45 o|Elizabeth 45 a|Barbara 40 o|Susan 40 o
Jessica 45 m|Sarah 45 m|Karen 35 o|Lisa 35 m|Nancy 30 o|Betty 25 o|Sandra 25 o|Margaret 25 o
Ashley 40 m|Kimberly 30 m|Emily 35 y|Donna 20 o|Michelle 30 m|Carol 20 o|Amanda 30 m
Melissa 28 m|Deborah 20 o|Stephanie 28 m|Dorothy 18 o|Rebecca 22 m|Sharon 18 o|Laura 22 m
Cynthia 15 o|Amy 20 m|Kathleen 15 o|Angela 20 m|Shirley 14 o|Brenda 14 o|Emma 35 y|Anna 18 a
Pamela 14 o|Nicole 22 m|Samantha 22 m|Katherine 18 a|Christine 14 o|Debra 12 o|Rachel 18 m
Carolyn 10 o|Janet 12 o|Catherine 12 a|Heather 15 m|Diane 10 o|Olivia 35 y|Julie 12 m|Joyce 8 o
Victoria 14 y|Ruth 8 o|Virginia 8 o|Lauren 15 m|Kelly 12 m|Christina 14 m|Joan 8 o|Evelyn 12 y
Judith 8 o|Andrea 12 m|Hannah 18 y|Megan 14 m|Cheryl 8 o|Jacqueline 8 m|Martha 8 o|Madison 18 y
Teresa 8 o|Gloria 6 o|Sara 10 m|Janice 6 o|Ann 8 o|Kathryn 8 m|Abigail 18 y|Sophia 30 y
Frances 6 o|Jean 6 o|Alice 6 o|Judy 6 o|Isabella 28 y|Julia 10 y|Grace 14 y|Amber 10 m|Denise 8 o
Danielle 10 m|Marilyn 5 o|Beverly 5 o|Charlotte 18 y|Natalie 12 y|Theresa 6 o|Diana 8 m
Brittany 10 m|Doris 4 o|Kayla 10 m|Alexis 10 y|Lori 6 m|Ava 25 y|Mia 22 y|Ella 15 y|Chloe 14 y
Avery 12 y|Harper 12 y|Aria 10 y|Lily 12 y|Lila 4 y|Zoey 10 y|Addison 10 y|Aubrey 8 y
Brooklyn 8 y|Layla 10 y|Scarlett 8 y|Nora 8 y|Riley 8 y|Hailey 8 y|Haley 5 m|Kaylee 6 y
Kylie 5 y|Madelyn 6 y|Ellie 6 y|Penelope 6 y|Stella 6 y|Hazel 6 y|Maya 8 y|Eva 6 y|Isabel 6 y
Jordyn 3 y|Alexandra 8 m|Tiffany 6 m|Crystal 6 m|Tamika 3 m|Latoya 3 m|Keisha 3 m|Ebony 3 m
Aaliyah 6 y|Imani 3 y|Jasmine 8 m|Destiny 5 y|Renée 3 o|Zoë 2 y|Chloé 2 y|Béatrice 2 o
Noémie 1 y|Hélène 1 o|Linh 2 a|Mai 2 a|Mei 2 a|Priya 2 m|Fatima 3 y|Aisha 3 y|Eleanor 6 y
Josephine 4 o|Abby 2 y|Gabriella 4 y`;

const HISPANIC_FEMALE_NAMES = `
María 45 a|Guadalupe 12 o|Rosa 10 o|Ana 18 a|Carmen 12 o|Juana 6 o|Margarita 6 o|Elena 8 a
Gabriela 10 m|Daniela 12 y|Adriana 8 m|Alejandra 8 m|Verónica 8 m|Leticia 6 o|Claudia 6 m
Sofía 18 y|Valentina 12 y|Camila 14 y|Lucía 10 y|Ximena 8 y|Natalia 8 y|Valeria 10 y
Mariana 8 y|Fernanda 5 y|Jimena 4 y|Renata 5 y|Regina 4 y|Paola 5 m|Karla 5 m|Yesenia 4 m
Araceli 4 m|Dolores 4 o|Concepción 3 o|Inés 4 a|Beatriz 4 o|Julieta 3 y|Luciana 5 y|Juliana 6 y
Marisol 4 m|Esperanza 3 o|Yolanda 5 o|Silvia 5 o|Graciela 4 o|Alicia 5 o|Raquel 4 m|Mónica 6 m
Mercedes 3 o|Rocío 3 m|Paloma 2 m|Anaís 2 y|Belén 2 y|Nayeli 3 y|Isabella 8 y|Andrea 5 m
Victoria 4 y|Patricia 5 o|Adriana 3 m`;

const MALE_MIDDLES = `James 30 a|Michael 25 a|Lee 20 a|Allen 12 a|Ray 10 o|Joseph 18 a|Thomas 14 a
Edward 10 o|Wayne 8 o|Dean 6 o|Lynn 3 o|Scott 8 m|Alexander 12 y|David 15 a|Paul 10 a|Anthony 12 a
Robert 14 a|William 14 a|John 12 a|Alan 6 m|Eugene 4 o|Matthew 10 m|Christopher 8 m|Andrew 8 m
Ryan 6 m|Daniel 8 a|Gabriel 6 y|Elijah 5 y|Grant 3 y|Luis 8 a|Antonio 5 a|Alejandro 4 a`;

const FEMALE_MIDDLES = `Marie 30 a|Ann 25 a|Lynn 20 a|Rose 12 a|Elizabeth 18 a|Grace 12 y|Nicole 10 m
Michelle 10 m|Renee 6 m|Jean 8 o|Louise 8 o|Mae 6 o|Jane 8 a|Kay 5 o|Sue 5 o|Elaine 5 o|Diane 4 o
Christine 6 m|Leigh 5 m|Marie 10 y|Olivia 5 y|Anne 8 a|Jo 3 o|Faith 4 y|Hope 3 y|Guadalupe 6 a
Isabel 5 a|Sofía 3 y|Del Carmen 2 a|Lucía 3 a`;

interface GivenEntry {
  name: string;
  weight: number;
  era: Era;
}

function parseNames(text: string): GivenEntry[] {
  return text
    .split(/[|\n]/)
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map((s) => {
      const parts = s.split(' ');
      const era = parts.pop() as Era;
      const weight = Number(parts.pop());
      if (!Number.isFinite(weight) || !'omya'.includes(era)) throw new Error(`bad name entry ${s}`);
      return { name: parts.join(' '), weight, era };
    });
}

/** Birth-era buckets: 0 before 1965, 1 for 1965–1995, 2 after 1995. */
export function eraOf(birthYear: number): 0 | 1 | 2 {
  return birthYear < 1965 ? 0 : birthYear <= 1995 ? 1 : 2;
}

const ERA_FACTOR: Record<Era, readonly [number, number, number]> = {
  o: [3, 1, 0.15],
  m: [0.6, 3, 0.6],
  y: [0.05, 0.5, 3],
  a: [1, 1, 1],
};

function eraTables(entries: GivenEntry[]): WeightedTable<string>[] {
  return [0, 1, 2].map(
    (era) => new WeightedTable(entries.map((e) => [e.name, e.weight * ERA_FACTOR[e.era][era]!] as const)),
  );
}

const MALE_ENTRIES = parseNames(MALE_NAMES);
const FEMALE_ENTRIES = parseNames(FEMALE_NAMES);
const HISP_MALE_ENTRIES = parseNames(HISPANIC_MALE_NAMES);
const HISP_FEMALE_ENTRIES = parseNames(HISPANIC_FEMALE_NAMES);

const GIVEN = {
  male: eraTables(MALE_ENTRIES),
  female: eraTables(FEMALE_ENTRIES),
};
const HISPANIC_GIVEN = {
  male: eraTables(HISP_MALE_ENTRIES),
  female: eraTables(HISP_FEMALE_ENTRIES),
};
const MIDDLES = {
  male: eraTables(parseNames(MALE_MIDDLES)),
  female: eraTables(parseNames(FEMALE_MIDDLES)),
};

/** A given name for a person of this sex, birth year and household background. */
export function pickGiven(rng: Rng, sex: SexCode, birthYear: number, hispanic: boolean): string {
  const era = eraOf(birthYear);
  const useHispanic = hispanic ? rng.chance(0.7) : rng.chance(0.03);
  return (useHispanic ? HISPANIC_GIVEN : GIVEN)[sex][era]!.pick(rng);
}

/** A middle name, or '' (about a third of people have none on record). */
export function pickMiddle(rng: Rng, sex: SexCode, birthYear: number, hispanic: boolean, given: string): string {
  if (rng.chance(0.33)) return '';
  for (let attempt = 0; attempt < 4; attempt++) {
    const middle = rng.chance(0.55)
      ? MIDDLES[sex][eraOf(birthYear)]!.pick(rng)
      : pickGiven(rng, sex, birthYear, hispanic);
    if (middle !== given) return middle;
  }
  return '';
}

/** Every distinct given name of one sex, for drawing a name with a chosen initial. */
export const ALL_GIVEN: Record<SexCode, readonly string[]> = {
  male: [...new Set([...MALE_ENTRIES, ...HISP_MALE_ENTRIES].map((e) => e.name))],
  female: [...new Set([...FEMALE_ENTRIES, ...HISP_FEMALE_ENTRIES].map((e) => e.name))],
};

// ---------------------------------------------------------------------------------------------
// Twins: names parents choose for twins are often alike.
const TWIN_PAIRS: readonly (readonly [string, SexCode, string, SexCode])[] = [
  ['Aiden', 'male', 'Ayden', 'male'], ['Jayden', 'male', 'Jaden', 'male'],
  ['Brandon', 'male', 'Brendan', 'male'], ['Ethan', 'male', 'Evan', 'male'],
  ['Austin', 'male', 'Justin', 'male'], ['Carson', 'male', 'Carter', 'male'],
  ['Jacob', 'male', 'Joshua', 'male'], ['Mateo', 'male', 'Matías', 'male'],
  ['Liam', 'male', 'Logan', 'male'], ['Landon', 'male', 'Brayden', 'male'],
  ['Emma', 'female', 'Ella', 'female'], ['Isabel', 'female', 'Isabella', 'female'],
  ['Madison', 'female', 'Madelyn', 'female'], ['Kaylee', 'female', 'Kylie', 'female'],
  ['Hailey', 'female', 'Haley', 'female'], ['Mia', 'female', 'Maya', 'female'],
  ['Ava', 'female', 'Eva', 'female'], ['Lily', 'female', 'Lila', 'female'],
  ['Sofía', 'female', 'Valentina', 'female'], ['Abigail', 'female', 'Addison', 'female'],
  ['Daniel', 'male', 'Daniela', 'female'], ['Gabriel', 'male', 'Gabriela', 'female'],
  ['Adrian', 'male', 'Adriana', 'female'], ['Julian', 'male', 'Juliana', 'female'],
  ['Alexander', 'male', 'Alexandra', 'female'], ['Jordan', 'male', 'Jordyn', 'female'],
  ['Mason', 'male', 'Madison', 'female'], ['Andrés', 'male', 'Andrea', 'female'],
];

/** A name for the second twin: often a near-homophone or the same initial as the first. */
export function pickTwinGiven(
  rng: Rng,
  first: string,
  sex: SexCode,
  birthYear: number,
  hispanic: boolean,
): string {
  const roll = rng.next();
  if (roll < 0.35) {
    const alike: string[] = [];
    for (const [a, sa, b, sb] of TWIN_PAIRS) {
      if (a === first && sb === sex) alike.push(b);
      if (b === first && sa === sex) alike.push(a);
    }
    if (alike.length > 0) return rng.pick(alike);
  }
  if (roll < 0.7) {
    const initial = first[0];
    const sameInitial = ALL_GIVEN[sex].filter((n) => n[0] === initial && n !== first);
    if (sameInitial.length > 0) return rng.pick(sameInitial);
  }
  for (let attempt = 0; attempt < 20; attempt++) {
    const name = pickGiven(rng, sex, birthYear, hispanic);
    if (name !== first) return name;
  }
  return sex === 'male' ? 'Samuel' : 'Grace';
}

// ---------------------------------------------------------------------------------------------
// Nicknames people use on forms instead of the legal given name.
export const NICKNAMES: Readonly<Record<string, readonly string[]>> = {
  William: ['Bill', 'Will', 'Billy', 'Liam'], Elizabeth: ['Liz', 'Beth', 'Betsy', 'Eliza', 'Lizzie'],
  José: ['Pepe', 'Joe'], Robert: ['Bob', 'Rob', 'Bobby'], Richard: ['Rick', 'Dick', 'Rich'],
  James: ['Jim', 'Jimmy', 'Jamie'], Jonathan: ['Jon'], Michael: ['Mike', 'Mikey'],
  Christopher: ['Chris', 'Topher'], Katherine: ['Kate', 'Katie', 'Kathy'], Kathryn: ['Kate', 'Katie'],
  Catherine: ['Cathy', 'Kate'], Margaret: ['Maggie', 'Peggy', 'Meg'], Alexander: ['Alex', 'Xander'],
  Anthony: ['Tony'], Joseph: ['Joe', 'Joey'], Daniel: ['Dan', 'Danny'], Matthew: ['Matt'],
  Nicholas: ['Nick'], Samuel: ['Sam', 'Sammy'], Benjamin: ['Ben', 'Benny'], Jennifer: ['Jen', 'Jenny'],
  Rebecca: ['Becky', 'Becca'], Victoria: ['Tori', 'Vicky'], Francisco: ['Paco', 'Pancho', 'Frank'],
  Guadalupe: ['Lupe'], Jesús: ['Chuy'], Alejandro: ['Alex'], Ignacio: ['Nacho'], Dolores: ['Lola'],
  Concepción: ['Concha'], Manuel: ['Manny'], Enrique: ['Kike', 'Henry'], Patricia: ['Patty', 'Trish'],
  Susan: ['Sue', 'Susie'], Deborah: ['Debbie', 'Deb'], Debra: ['Debbie', 'Deb'], Thomas: ['Tom', 'Tommy'],
  Edward: ['Ed', 'Eddie', 'Ted'], Charles: ['Charlie', 'Chuck'], Andrew: ['Andy', 'Drew'],
  Steven: ['Steve'], Stephen: ['Steve'], Timothy: ['Tim'], Zachary: ['Zach', 'Zack'], Jacob: ['Jake'],
  Joshua: ['Josh'], Gabriel: ['Gabe'], Abigail: ['Abby'], Madison: ['Maddie'], Isabella: ['Bella', 'Izzy'],
  Olivia: ['Liv', 'Livvy'], Samantha: ['Sam', 'Sammy'], Alexandra: ['Alex', 'Lexi'], Natalie: ['Nat'],
  Kimberly: ['Kim'], Jessica: ['Jess', 'Jessie'], Christina: ['Tina', 'Chris'], Cynthia: ['Cindy'],
  Pamela: ['Pam'], Barbara: ['Barb', 'Barbie'], Dorothy: ['Dot', 'Dottie'], Theodore: ['Teddy', 'Theo'],
  Nathaniel: ['Nate', 'Nathan'], Nathan: ['Nate'], Jeffrey: ['Jeff'], Gregory: ['Greg'], Raymond: ['Ray'],
  Lawrence: ['Larry'], Gerald: ['Jerry'], Kenneth: ['Ken', 'Kenny'], Donald: ['Don', 'Donnie'],
  Ronald: ['Ron', 'Ronnie'], Douglas: ['Doug'], Peter: ['Pete'], Harold: ['Harry', 'Hal'],
  Leonard: ['Len', 'Lenny'], Eugene: ['Gene'], Albert: ['Al', 'Bert'], Walter: ['Walt'],
  Vincent: ['Vince', 'Vinny'], Eleanor: ['Ellie', 'Nora'], Josephine: ['Josie', 'Jo'],
  Evelyn: ['Evie'], Sofía: ['Sofi'], María: ['Mari'], Alejandra: ['Ale'], Roberto: ['Beto'],
  Eduardo: ['Lalo'], Rafael: ['Rafa'], Guillermo: ['Memo'], Fernando: ['Nando'], Santiago: ['Santi'],
  Sebastián: ['Sebas'], Valentina: ['Vale'], Daniela: ['Dani'], Gabriela: ['Gaby'],
  Mary: ['Molly', 'Polly'], Sarah: ['Sally'], Ann: ['Annie'], Anna: ['Annie'], Emily: ['Em', 'Emmy'],
  Charlotte: ['Charlie', 'Lottie'], Penelope: ['Penny'], Christine: ['Chris'], Judith: ['Judy'],
  Frances: ['Fran'], Teresa: ['Terry'], Theresa: ['Terry'], Virginia: ['Ginny'], Henry: ['Hank'],
  Frank: ['Frankie'], Patrick: ['Pat'], Jacqueline: ['Jackie'], Cameron: ['Cam'], Dominic: ['Dom'],
};

// ---------------------------------------------------------------------------------------------
/** True when the text has any non-ASCII letter (an accent). */
export function hasDiacritics(text: string): boolean {
  return /[^\x00-\x7f]/.test(text);
}

/** Folds accents: "José Muñoz" → "Jose Munoz". */
export function stripDiacritics(text: string): string {
  return hasDiacritics(text) ? text.normalize('NFD').replace(/\p{M}/gu, '') : text;
}
