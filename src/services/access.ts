// Which clients a service serves: xinetd's only_from and no_access. Where
// both cover an address, the longer prefix decides (only-from 10.0.0.0/8
// with no-access 10.1.0.0/16 refuses 10.1.2.3; only-from 10.1.2.3 with
// no-access 10.0.0.0/8 serves it), and no-access wins a tie.

import net from 'node:net';
import type { AddressRule, ClientAccess } from '../config/entry.js';
import { ReportThrottle, type Logger } from '../log.js';
import type { Address } from '../sockets/internals.js';

const reportEveryMs = 60_000;

interface Rule {
  readonly text: string;
  readonly prefix: number;
  readonly covers: net.BlockList;
}

function compile({ address, family, prefix }: AddressRule): Rule {
  const covers = new net.BlockList();
  covers.addSubnet(address, prefix, family === 6 ? 'ipv6' : 'ipv4');
  const whole = family === 6 ? 128 : 32;
  return { text: prefix === whole ? address : `${address}/${prefix}`, prefix, covers };
}

/** The most specific rule that covers `peer`, or null. */
function longestMatch(rules: readonly Rule[], peer: Address): Rule | null {
  const type = peer.family === 'IPv6' ? 'ipv6' : 'ipv4';
  let longest: Rule | null = null;
  for (const rule of rules) {
    if ((longest === null || rule.prefix > longest.prefix) && rule.covers.check(peer.address, type)) longest = rule;
  }
  return longest;
}

export class ClientFilter {
  readonly #onlyFrom: readonly Rule[] | null;
  readonly #noAccess: readonly Rule[];
  readonly #refusals = new ReportThrottle(reportEveryMs);

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
   * is logged, at most once a minute with a count; `client` names the client.
   */
  admits(peer: Address | null, client: string): boolean {
    if (peer === null || (this.#onlyFrom === null && this.#noAccess.length === 0)) return true;
    const why = this.#refusal(peer);
    if (why === null) return true;
    const more = this.#refusals.heldBackNote();
    if (more === null) return false;
    if (this.refused === 'connection') this.log.warn(this.label, `reject client ${client}: ${why}; closed its connection${more}`);
    else this.log.warn(this.label, `ignored a datagram from ${client}: ${why}${more}`);
    return false;
  }

  #refusal(peer: Address): string | null {
    const allowed = this.#onlyFrom === null ? null : longestMatch(this.#onlyFrom, peer);
    if (this.#onlyFrom !== null && allowed === null) return 'its address is not in only-from';
    const denied = longestMatch(this.#noAccess, peer);
    if (denied === null || (allowed !== null && allowed.prefix > denied.prefix)) return null;
    return `its address is in no-access (${denied.text})`;
  }
}
