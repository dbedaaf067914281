// The addresses and networks of only-from and no-access, as written in the
// table: `10.0.0.0/8 ::1, 192.0.2.7, localhost`. What a rule covers is
// decided here, so that a rule that would cover something other than what
// it says is an error with the reason, never a silent surprise at accept.
// A host name is looked up when the table is loaded, as xinetd does, never
// at accept: it stands for every address it has then.

import dns from 'node:dns/promises';
import net from 'node:net';
import { errnoOf } from '../errors.js';
import type { AddressRule } from './entry.js';
import { LineProblem } from './fields.js';

/** A host name in a rule, to be looked up with the rest of the table (`line`: the option's). */
export interface HostRule {
  readonly host: string;
  readonly line: number;
}

export type WrittenRule = AddressRule | HostRule;

// RFC 1123 labels, dot-separated; a trailing dot is allowed.
const hostName = /^(?=.{1,253}\.?$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*\.?$/i;

const ipv4Mapped = new net.BlockList();
ipv4Mapped.addSubnet('::ffff:0:0', 96, 'ipv6');

/** The IPv4 address an IPv6 address is the mapped form of (::ffff:10.0.0.1, judged by value, whatever the spelling), or null. */
export function mappedIpv4(address: string): string | null {
  return ipv4Mapped.check(address, 'ipv6') ? fromBits(toBits(address, 6) & 0xffffffffn, 4) : null;
}

/** `10.1.0.0/16`; a lone address (a /32 or /128) without its prefix. */
export function formatAddressRule({ address, family, prefix }: AddressRule): string {
  return prefix === (family === 4 ? 32 : 128) ? address : `${address}/${prefix}`;
}

/** Addresses, networks and host names, separated by blanks or commas. */
export function parseAddressRules(value: string, line: number): WrittenRule[] {
  const braces = /\S*\{[^}]*\}?/.exec(value);
  if (braces) throw new LineProblem(`"${braces[0]}": xinetd's {a,b} form is not read here: write each address, or a network (10.0.0.0/24)`);
  const words = value.split(/[\s,]+/).filter((word) => word !== '');
  if (words.length === 0) throw new LineProblem('expected addresses, networks or host names, as 10.0.0.0/8, ::1 or localhost');
  return words.map((word) => (isHostName(word) ? { host: word, line } : parseAddressRule(word)));
}

/**
 * A name to look up, not an address however it is spelled: its last label
 * is not a number (the resolver would read 0x7f.1 or 0x7f000001 as
 * 127.0.0.1, getting past the checks an address gets).
 */
function isHostName(word: string): boolean {
  const last = word.replace(/\.$/, '').split('.').at(-1)!;
  return net.isIP(word) === 0 && hostName.test(word) && !/^(\d+|0x[0-9a-f]*)$/i.test(last);
}

/**
 * The rules with each host name replaced by the addresses it has now, of
 * both families; one that has none is an error naming its line.
 */
export async function resolveAddressRules(rules: readonly WrittenRule[], key: string): Promise<AddressRule[]> {
  const resolved = await Promise.all(
    rules.map(async (rule) => {
      if (!('host' in rule)) return [rule];
      try {
        const found = await dns.lookup(rule.host, { all: true });
        return addressesOf(found).map(({ address, family }): AddressRule => ({ address, family, prefix: family === 4 ? 32 : 128, from: rule.host }));
      } catch (error) {
        throw new LineProblem(`option "${key}": cannot resolve host "${rule.host}" (${errnoOf(error) ?? error})`, rule.line);
      }
    }),
  );
  return resolved.flat();
}

/**
 * A lookup's addresses, once each and sorted: the resolver's order may
 * change from one load to the next (round-robin DNS), and a reload takes a
 * changed rule for a changed service. An IPv4-mapped answer is its IPv4
 * address, as a client from it is matched.
 */
export function addressesOf(found: readonly { address: string; family: number }[]): { address: string; family: 4 | 6 }[] {
  const unique = new Map<string, 4 | 6>();
  for (const { address, family } of found) {
    const ipv4 = family === 6 ? mappedIpv4(address) : null;
    if (ipv4 !== null) unique.set(ipv4, 4);
    else unique.set(canonical(address, family as 4 | 6), family as 4 | 6);
  }
  return [...unique].map(([address, family]) => ({ address, family })).sort((a, b) => a.family - b.family || (a.address < b.address ? -1 : 1));
}

function parseAddressRule(word: string): AddressRule {
  const [address = '', prefix, ...rest] = word.split('/');
  const family = net.isIP(address) as 0 | 4 | 6;
  if (family === 0 || rest.length > 0) {
    throw new LineProblem(`"${word}" is not an address, a network or a host name (as 10.0.0.0/8, ::1 or localhost)`);
  }
  if (address.includes('%')) throw new LineProblem(`"${word}": a rule cannot name a zone (${address.slice(address.indexOf('%'))})`);
  const bits = family === 4 ? 32 : 128;
  if (prefix !== undefined && (!/^\d{1,3}$/.test(prefix) || Number(prefix) > bits)) {
    throw new LineProblem(`"${word}": the prefix length of an IPv${family} network is 0 to ${bits}`);
  }
  const length = prefix === undefined ? null : Number(prefix);
  // Judged by value, whatever the spelling (::ffff:10.0.0.1, ::ffff:a00:1, 0:0:0:0:0:ffff:…): such a rule would cover nobody.
  if (family === 6 && (length ?? bits) >= 96 && mappedIpv4(address) !== null) {
    throw new LineProblem(`"${word}" is an IPv4-mapped address: write the IPv4 address or network (IPv4 rules cover IPv4 clients on dual-stack sockets too)`);
  }
  if (length === null) return { address, family, prefix: family === 4 ? wildcardPrefix(address) : bits };
  const network = networkOf(address, family, length);
  // 10.1.2.3/16 is as likely a typo for /32 as a name for 10.1.0.0/16: an access rule should not guess.
  if (network !== canonical(address, family)) {
    throw new LineProblem(`"${word}" has bits set past its /${length} prefix: write ${network}/${length} for that network, or the address alone`);
  }
  return { address, family, prefix: length };
}

/** As in xinetd, the zero octets that end a lone IPv4 address are wildcards: 10.1.0.0 is 10.1.0.0/16, 0.0.0.0 every address. */
function wildcardPrefix(address: string): number {
  const octets = address.split('.');
  while (octets.length > 0 && Number(octets.at(-1)) === 0) octets.pop();
  return octets.length * 8;
}

/** The first address of the /prefix network holding `address`, in canonical form. */
function networkOf(address: string, family: 4 | 6, prefix: number): string {
  const bits = family === 4 ? 32 : 128;
  const hostBits = (1n << BigInt(bits - prefix)) - 1n;
  return fromBits(toBits(address, family) & ~hostBits, family);
}

function canonical(address: string, family: 4 | 6): string {
  return fromBits(toBits(address, family), family);
}

function toBits(address: string, family: 4 | 6): bigint {
  const words = family === 4 ? address.split('.').map(Number) : ipv6Groups(address);
  const width = family === 4 ? 8n : 16n;
  return words.reduce((value, word) => (value << width) | BigInt(word), 0n);
}

/** The eight 16-bit groups of an IPv6 address that net.isIP accepted (:: and a dotted IPv4 tail included). */
function ipv6Groups(address: string): number[] {
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(address);
  const hex = dotted === null ? address : address.slice(0, dotted.index) + '0:0';
  const [head = '', tail] = hex.split('::');
  const parse = (part: string) => (part === '' ? [] : part.split(':').map((group) => parseInt(group, 16)));
  const groups = tail === undefined ? parse(head) : [...parse(head), ...Array<number>(8 - parse(head).length - parse(tail).length).fill(0), ...parse(tail)];
  if (dotted !== null) {
    const [, a, b, c, d] = dotted.map(Number);
    groups.splice(6, 2, (a! << 8) | b!, (c! << 8) | d!);
  }
  return groups;
}

function fromBits(value: bigint, family: 4 | 6): string {
  if (family === 4) return [24n, 16n, 8n, 0n].map((shift) => Number((value >> shift) & 0xffn)).join('.');
  const groups = Array.from({ length: 8 }, (_, index) => ((value >> BigInt(112 - index * 16)) & 0xffffn).toString(16));
  return new net.SocketAddress({ address: groups.join(':'), family: 'ipv6' }).address;
}
