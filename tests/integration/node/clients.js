// Drives capkv with ioredis and node-redis v4, both with DEFAULT options (ioredis sends INFO
// for its ready check; node-redis sends its own handshake on connect()). Usage:
//   node clients.js ioredis|node-redis PORT
// Prints "ok <client>" and exits 0 when every check holds; exits 1 with the reason otherwise.
'use strict';

const assert = require('assert/strict');

const [which, portText] = process.argv.slice(2);
const port = Number(portText);
const p = `t:${which}:`;

async function withIoredis() {
  const Redis = require('ioredis');
  const client = new Redis(port, '127.0.0.1');
  await new Promise((resolve, reject) => {
    client.once('ready', resolve);
    client.once('error', reject);
  });
  assert.equal(client.status, 'ready');
  assert.equal(await client.set(`${p}s`, 'v'), 'OK');
  assert.equal(await client.get(`${p}s`), 'v');
  assert.equal(await client.incr(`${p}n`), 1);
  assert.equal(await client.incrby(`${p}n`, 9), 10);
  assert.equal(await client.hset(`${p}h`, 'f', 'v', 'g', 'w'), 2);
  assert.deepEqual(await client.hgetall(`${p}h`), { f: 'v', g: 'w' });
  assert.equal(await client.sadd(`${p}set`, 'a', 'b', 'a'), 2);
  assert.deepEqual((await client.smembers(`${p}set`)).sort(), ['a', 'b']);
  const tx = await client.multi().set(`${p}m`, '1').incr(`${p}m`).get(`${p}m`).exec();
  assert.deepEqual(tx, [[null, 'OK'], [null, 2], [null, '2']]);
  const pipe = client.pipeline();
  for (let i = 0; i < 100; i++) pipe.set(`${p}pl:${i}`, String(i));
  pipe.mget(`${p}pl:0`, `${p}pl:99`);
  const results = await pipe.exec();
  assert.equal(results.length, 101);
  assert.deepEqual(results[100], [null, ['0', '99']]);
  await assert.rejects(client.hget(`${p}s`, 'f'), /WRONGTYPE/);
  assert.equal(await client.quit(), 'OK');
}

async function withNodeRedis() {
  const { createClient } = require('redis');
  const client = createClient({ url: `redis://127.0.0.1:${port}` });
  const errors = [];
  client.on('error', (e) => errors.push(e));
  await client.connect();
  assert.equal(client.isReady, true);
  assert.equal(await client.set(`${p}s`, 'v'), 'OK');
  assert.equal(await client.get(`${p}s`), 'v');
  assert.equal(await client.incr(`${p}n`), 1);
  assert.equal(await client.hSet(`${p}h`, { f: 'v', g: 'w' }), 2);
  assert.deepEqual({ ...(await client.hGetAll(`${p}h`)) }, { f: 'v', g: 'w' });
  assert.equal(await client.sAdd(`${p}set`, ['a', 'b', 'a']), 2);
  assert.deepEqual((await client.sMembers(`${p}set`)).sort(), ['a', 'b']);
  const tx = await client.multi().set(`${p}m`, '1').incr(`${p}m`).get(`${p}m`).exec();
  assert.deepEqual(tx, ['OK', 2, '2']);
  const replies = await Promise.all(
    Array.from({ length: 100 }, (_, i) => client.set(`${p}pl:${i}`, String(i))));
  assert.equal(replies.filter((r) => r === 'OK').length, 100);
  const piped = await client.multi().get(`${p}pl:0`).get(`${p}pl:99`).execAsPipeline();
  assert.deepEqual(piped, ['0', '99']);
  await assert.rejects(client.hGet(`${p}s`, 'f'), /WRONGTYPE/);
  assert.equal(await client.quit(), 'OK');
  assert.deepEqual(errors, []);
}

const run = which === 'ioredis' ? withIoredis : which === 'node-redis' ? withNodeRedis : null;
if (run === null || !Number.isInteger(port)) {
  console.error('usage: node clients.js ioredis|node-redis PORT');
  process.exit(2);
}
const timer = setTimeout(() => {
  console.error(`timeout: ${which} did not finish in 20 s`);
  process.exit(1);
}, 20000);
run().then(() => {
  clearTimeout(timer);
  console.log(`ok ${which}`);
}, (e) => {
  console.error(`FAIL ${which}: ${e && e.stack ? e.stack : e}`);
  process.exit(1);
});
