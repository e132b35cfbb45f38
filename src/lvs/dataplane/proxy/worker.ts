/**
 * Worker-thread entry of the data plane (started by DataPlane in index.ts). Everything that
 * touches client or real-server traffic runs here, off the VRRP event loop.
 */

import { parentPort } from 'node:worker_threads';
import { Engine } from './engine.js';
import type { WorkerMessage } from './protocol.js';

if (!parentPort) throw new Error('lvs/dataplane/worker.js must run as a worker thread');
const port = parentPort;
const engine = new Engine((m: WorkerMessage) => port.postMessage(m));
port.on('message', (m: unknown) => engine.handle(m));
