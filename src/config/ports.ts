// Service names to port numbers: /etc/services, with a built-in fallback for
// the internal services so that a minimal system (no /etc/services) still
// understands a classic inetd.conf.

import { readFileSync } from 'node:fs';

const fallback: Readonly<Record<string, number>> = { echo: 7, discard: 9, daytime: 13, chargen: 19, time: 37 };

export type PortTable = ReadonlyMap<string, number>;

/** Keys are `name/tcp` and `name/udp`, aliases included. */
export function readPortTable(file = '/etc/services'): PortTable {
  const table = new Map<string, number>();
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    // No services file: the fallback below is all there is.
  }
  for (const line of text.split('\n')) {
    const [name, portProto, ...aliases] = line.replace(/#.*/, '').trim().split(/\s+/);
    const match = portProto && /^(\d+)\/(tcp|udp)$/.exec(portProto);
    if (!name || !match) continue;
    for (const alias of [name, ...aliases]) {
      const key = `${alias}/${match[2]}`;
      if (!table.has(key)) table.set(key, Number(match[1]));
    }
  }
  for (const [name, port] of Object.entries(fallback)) {
    for (const proto of ['tcp', 'udp']) if (!table.has(`${name}/${proto}`)) table.set(`${name}/${proto}`, port);
  }
  return table;
}

/** A port number or a service name; undefined when the name is unknown. */
export function lookupPort(table: PortTable, service: string, transport: 'tcp' | 'udp'): number | undefined {
  if (/^\d+$/.test(service)) {
    const port = Number(service);
    return port <= 65535 ? port : undefined;
  }
  return table.get(`${service}/${transport}`);
}
