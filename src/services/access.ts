// Which clients a service serves: xinetd's only_from and no_access. Where
// both cover an address, the longer prefix decides (only-from 10.0.0.0/8
// with no-access 10.1.0.0/16 refuses 10.1.2.3; only-from 10.1.2.3 with
// no-access 10.0.0.0/8 serves it), as xinetd's manual describes it, and
// no-access wins a tie (xinetd's code refuses whenever both lists match).
// An IPv4 rule covers IPv4 clients only, an IPv6 rule IPv6 clients only;
// an IPv4 client on a dual-stack socket (one adopted from LISTEN_FDS), seen
// as ::ffff:a.b.c.d, is an IPv4 client.

import net from 'node:net';
import { formatAddressRule } from '../config/address-rules.js';
import type { AddressRule, ClientAccess } from '../config/entry.js';
import { counted, ReportThrottle, type Logger } from '../log.js';
import type { Address } from '../sockets/internals.js';
import { clientName } from './listener.js';

const reportEveryMs = 60_000;

interface Rule {
  readonly text: string;
  readonly family: 4 | 6;
  readonly prefix: number;
  readonly covers: net.BlockList;
}

function compile(rule: AddressRule): Rule {
  const covers = new net.BlockList();
  covers.addSubnet(rule.address, rule.prefix, rule.family === 6 ? 'ipv6' : 'ipv4');
  const text = rule.from === undefined ? formatAddressRule(rule) : `${rule.from}: ${formatAddressRule(rule)}`;
  return { text, family: rule.family, prefix: rule.prefix, covers };
}

interface RuleAddress {
  readonly family: 4 | 6;
  /** Made once per client: BlockList.check would make one per rule from a string. */
  readonly address: net.SocketAddress;
}

function ruleAddressOf(peer: Address): RuleAddress {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(peer.address);
  if (peer.family === 'IPv4' || mapped) {
    return { family: 4, address: new net.SocketAddress({ address: mapped?.[1] ?? peer.address, family: 'ipv4' }) };
  }
  return { family: 6, address: new net.SocketAddress({ address: peer.address, family: 'ipv6' }) };
}

/** The most specific rule that covers `client`, or null. */
function longestMatch(rules: readonly Rule[], client: RuleAddress): Rule | null {
  let longest: Rule | null = null;
  for (const rule of rules) {
    if (rule.family !== client.family || (longest !== null && rule.prefix <= longest.prefix)) continue;
    if (rule.covers.check(client.address)) longest = rule;
  }
  return longest;
}

export class ClientFilter {
  readonly #onlyFrom: readonly Rule[] | null;
  readonly #noAccess: readonly Rule[];
  readonly #refusals = new ReportThrottle(reportEveryMs, (count) =>
    this.log.warn(
      this.label,
      this.refused === 'connection'
        ? `rejected ${counted(count, 'more client')} since the last report: their addresses are refused by only-from or no-access`
        : `ignored ${counted(count, 'more datagram')} since the last report: their addresses are refused by only-from or no-access`,
    ),
  );

  constructor(
    access: ClientAccess,
    readonly label: string,
    readonly log: Logger,
    /** What the refusal drops, for the log. */
    readonly refused: 'connection' | 'datagram',
  ) {
    this.#onlyFrom = access.onlyFrom?.map(compile) ?? null;
    this.#noAccess = access.noAccess.map(compile);
  }

  /**
   * Whether a client from `peer` is served (null: a unix socket's, or one
   * gone before it was looked at, which nothing here refuses). A refusal
   * is logged, at most once a minute with a count.
   */
  admits(peer: Address | null): boolean {
    const why = this.refusal(peer);
    if (why === null) return true;
    const more = this.#refusals.heldBackNote(`${this.refused}s refused`);
    if (more === null) return false;
    const client = clientName(peer);
    if (this.refused === 'connection') this.log.warn(this.label, `reject client ${client}: ${why}; closed its connection${more}`);
    else this.log.warn(this.label, `ignored a datagram from ${client}: ${why}${more}`);
    return false;
  }

  /** Why a client from `peer` is refused (`its address is not in only-from`), or null if it is served. */
  refusal(peer: Address | null): string | null {
    if (peer === null || (this.#onlyFrom === null && this.#noAccess.length === 0)) return null;
    const client = ruleAddressOf(peer);
    const allowed = this.#onlyFrom === null ? null : longestMatch(this.#onlyFrom, client);
    if (this.#onlyFrom !== null && allowed === null) return 'its address is not in only-from';
    const denied = longestMatch(this.#noAccess, client);
    if (denied === null || (allowed !== null && allowed.prefix > denied.prefix)) return null;
    return `its address is in no-access (${denied.text})`;
  }
}
