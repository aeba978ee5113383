import { describe, it, expect } from 'vitest';
import { areNicknames, nicknameRoots } from '../../src/normalise/index.ts';
import { NICKNAME_PAIR_COUNT } from '../../src/normalise/nicknames.ts';

describe('nicknameRoots', () => {
  it('maps a nickname to its canonical root', () => {
    expect(nicknameRoots('BILL')).toEqual(['WILLIAM']);
    expect(nicknameRoots('PEGGY')).toEqual(['MARGARET']);
    expect(nicknameRoots('HANK')).toEqual(['HENRY']);
  });

  it('maps a root to itself', () => {
    expect(nicknameRoots('WILLIAM')).toEqual(['WILLIAM']);
    expect(nicknameRoots('ELIZABETH')).toEqual(['ELIZABETH']);
  });

  it('returns every root an ambiguous nickname may stand for', () => {
    expect(nicknameRoots('ALEX')).toEqual(['ALEXANDER', 'ALEXANDRA', 'ALEXIS']);
    expect([...nicknameRoots('CHRIS')].sort()).toEqual(['CHRISTIAN', 'CHRISTINA', 'CHRISTINE', 'CHRISTOPHER']);
    expect(nicknameRoots('SAM')).toContain('SAMANTHA');
    expect(nicknameRoots('SAM')).toContain('SAMUEL');
  });

  it('puts the most likely root first, because blocking keys on it', () => {
    expect(nicknameRoots('SANDY')[0]).toBe('SANDRA');
    expect(nicknameRoots('SANDY')).toContain('ALEXANDER');
    expect(nicknameRoots('CHRIS')[0]).toBe('CHRISTOPHER');
    expect(nicknameRoots('RICK')[0]).toBe('RICHARD');
    expect(nicknameRoots('ED')[0]).toBe('EDWARD');
  });

  it('keeps a name that is itself a root first, before roots it is a diminutive of', () => {
    expect(nicknameRoots('NATHAN')).toEqual(['NATHAN', 'NATHANIEL']);
    expect(nicknameRoots('NATE')).toEqual(['NATHAN', 'NATHANIEL']);
  });

  it('maps spelling variants to one root', () => {
    expect(nicknameRoots('CATHERINE')).toEqual(['KATHERINE']);
    expect(nicknameRoots('KATHRYN')).toEqual(['KATHERINE']);
    expect(nicknameRoots('STEVEN')).toEqual(['STEPHEN']);
  });

  it('returns an unknown name as its own root', () => {
    expect(nicknameRoots('XZAVIER')).toEqual(['XZAVIER']);
    expect(nicknameRoots('')).toEqual(['']);
  });

  it('covers Spanish hypocoristics', () => {
    const cases: Array<[string, string]> = [
      ['PEPE', 'JOSE'], ['PACO', 'FRANCISCO'], ['PANCHO', 'FRANCISCO'], ['LUPE', 'GUADALUPE'],
      ['CHUY', 'JESUS'], ['NACHO', 'IGNACIO'], ['MEMO', 'GUILLERMO'], ['LALO', 'EDUARDO'],
      ['QUIQUE', 'ENRIQUE'],
    ];
    for (const [nick, root] of cases) expect(nicknameRoots(nick), nick).toContain(root);
  });

  it('has a substantial table', () => {
    expect(NICKNAME_PAIR_COUNT).toBeGreaterThanOrEqual(300);
  });

  it('returns frozen arrays so callers cannot corrupt the shared table', () => {
    expect(Object.isFrozen(nicknameRoots('BILL'))).toBe(true);
  });
});

describe('areNicknames', () => {
  it('matches the common US pairs from the brief', () => {
    const pairs: Array<[string, string]> = [
      ['BOB', 'ROBERT'], ['PEGGY', 'MARGARET'], ['LIZ', 'ELIZABETH'], ['BETH', 'ELIZABETH'],
      ['BETTY', 'ELIZABETH'], ['JIM', 'JAMES'], ['JIMMY', 'JAMES'], ['KATE', 'KATHERINE'],
      ['KATIE', 'CATHERINE'], ['KATHY', 'KATHERINE'], ['MIKE', 'MICHAEL'], ['CHRIS', 'CHRISTOPHER'],
      ['CHRIS', 'CHRISTINA'], ['CHRIS', 'CHRISTINE'], ['TONY', 'ANTHONY'], ['SANDY', 'SANDRA'],
      ['SANDY', 'ALEXANDER'], ['JACK', 'JOHN'], ['HANK', 'HENRY'], ['NATE', 'NATHAN'],
      ['NATE', 'NATHANIEL'], ['GABE', 'GABRIEL'], ['ABBY', 'ABIGAIL'], ['MADDIE', 'MADISON'],
      ['MADDIE', 'MADELINE'], ['ZACH', 'ZACHARY'], ['JOSH', 'JOSHUA'], ['SAM', 'SAMUEL'],
      ['SAM', 'SAMANTHA'], ['BEN', 'BENJAMIN'], ['DANI', 'DANIELA'], ['DANI', 'DANIELLE'],
      ['NICK', 'NICHOLAS'], ['MATT', 'MATTHEW'], ['ANDY', 'ANDREW'], ['JEN', 'JENNIFER'],
      ['JENNY', 'JENNIFER'], ['TOM', 'THOMAS'], ['BILL', 'WILLIAM'],
    ];
    for (const [a, b] of pairs) {
      expect(areNicknames(a, b), `${a}~${b}`).toBe(true);
      expect(areNicknames(b, a), `${b}~${a}`).toBe(true);
    }
  });

  it('matches two nicknames of the same root', () => {
    expect(areNicknames('BILL', 'WILL')).toBe(true);
    expect(areNicknames('PEGGY', 'MAGGIE')).toBe(true);
  });

  it('matches a variant spelling with a nickname of its root', () => {
    expect(areNicknames('CATHERINE', 'KATHERINE')).toBe(true);
    expect(areNicknames('CATHERINE', 'KATE')).toBe(true);
  });

  it('is false for identical names, which the exact level handles', () => {
    expect(areNicknames('WILLIAM', 'WILLIAM')).toBe(false);
    expect(areNicknames('ZZZ', 'ZZZ')).toBe(false);
  });

  it('is false for unrelated names, known or not', () => {
    expect(areNicknames('BILL', 'ROBERT')).toBe(false);
    expect(areNicknames('JOHN', 'JAMES')).toBe(false);
    expect(areNicknames('XZAVIER', 'WILLIAM')).toBe(false);
    expect(areNicknames('XZAVIER', 'QUINCY')).toBe(false);
    expect(areNicknames('', 'WILLIAM')).toBe(false);
  });

  it('does not treat two different roots as nicknames of each other', () => {
    expect(areNicknames('CHRISTOPHER', 'CHRISTINA')).toBe(false);
    expect(areNicknames('SAMUEL', 'SAMANTHA')).toBe(false);
  });
});
