/** Every case, in order, and the selection a run uses. */
import { Case, sectionOf } from '../types';
import { closeCases } from './close';
import { deflateCases } from './deflate';
import { framingCases } from './framing';
import { largeCases } from './large';
import { utf8Cases } from './utf8';

export const SECTIONS: Record<number, string> = {
  1: 'framing',
  2: 'pings and pongs',
  3: 'reserved bits',
  4: 'opcodes',
  5: 'fragmentation',
  6: 'UTF-8',
  7: 'close handling',
  9: 'large and many messages',
  10: 'auto-fragmentation',
  12: 'permessage-deflate',
  13: 'permessage-deflate parameters'
};

let all: Case[] | undefined;

/** All cases (built once per process). */
export function allCases(): Case[] {
  all ??= [...framingCases(), ...utf8Cases(), ...closeCases(), ...largeCases(), ...deflateCases()];
  return all;
}

/** True when CONFORMANCE_FULL asks for the full run. */
export const FULL = process.env.CONFORMANCE_FULL !== undefined && process.env.CONFORMANCE_FULL !== '' && process.env.CONFORMANCE_FULL !== '0';

/** The cases of one section this run includes. */
export function casesOf(section: number, full = FULL): Case[] {
  return allCases().filter((c) => sectionOf(c.id) === section && (full || !c.full));
}

/**
 * The byte-sequence families 6.7-6.23 test UTF-8 validation, which is the same code in both
 * roles. Each case costs the suite-as-server run one echo-client process (~0.15 s of CPU),
 * so outside the full run that role takes only the first and last case of each family.
 */
export function isFamilyInterior(c: Case): boolean {
  const m = /^6\.(\d+)\.(\d+)$/.exec(c.id);
  if (!m || Number(m[1]) < 7 || Number(m[1]) > 23) return false;
  const n = Number(m[2]);
  const size = allCases().filter((o) => o.id.startsWith(`6.${m[1]}.`)).length;
  return n !== 1 && n !== size;
}
