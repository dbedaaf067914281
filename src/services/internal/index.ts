// inetd's internal services as data: name → implementation, and the
// well-known ports they answer on, which UDP loop protection refuses as
// source ports.

import type { InternalName } from '../../config/entry.js';
import type { Builtin } from './builtin.js';
import { chargen } from './chargen.js';
import { daytime } from './daytime.js';
import { discard } from './discard.js';
import { echo } from './echo.js';
import { time } from './time.js';

export const builtins: Readonly<Record<InternalName, Builtin>> = { echo, discard, chargen, daytime, time };

export const wellKnownPorts: readonly number[] = [7, 9, 13, 19, 37];
