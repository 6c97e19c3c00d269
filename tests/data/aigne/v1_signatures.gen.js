// Generates v1 signature vectors the way an AIGNE app does: JSON.parse the body (as Express),
// json-stable-stringify {appId, timestamp, data, userDid}, SHA3-256, ed25519 over the raw digest.
const crypto = require('crypto');
const stringify = require('json-stable-stringify');
const sk = Buffer.from('D67C071B6F51D2B61180B9B1AA9BE0DD0704619F0E30453AB4A592B036EDE644', 'hex');
// PKCS8 wrapper for a raw ed25519 seed
const der = Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), sk]);
const key = crypto.createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
const appId = 'zNKtCNqYWLYWYW3gWRA1vnRykfCBZYHZvzKr';
const bodies = [
  ['plain chat', '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hello"}],"stream":false}', 'z1UserDid', 1767225600],
  ['no user header', '{"b":1,"a":[3,2,1]}', undefined, 1767225601],
  ['empty user header', '{"b":1,"a":[3,2,1]}', '', 1767225602],
  ['empty body', '', 'z1UserDid', 1767225603],
  ['unicode and escapes', '{"text":"h\\u00e9llo \\u2028 \\u2029 \\u007f \\u0001 \\"q\\" \\\\ \\n\\t 日本 😀","\\ud83d\\ude00":1,"\\uffff":2,"z":3,"Z":4}', 'z1UserDid', 1767225604],
  ['numbers', '{"f":1.0,"g":1e21,"h":1e-7,"i":123456789012345678901234,"j":-0,"k":0.1,"l":1.5e-6,"m":100,"n":2.5e+20,"o":-3.25}', 'z1UserDid', 1767225605],
  ['nested', '{"input":{"messages":[{"role":"agent","toolCalls":[{"id":"c1","type":"function","function":{"name":"f","arguments":{"y":[true,false,null],"x":{}}}}]}]},"options":{"streaming":true}}', 'z1UserDid', 1767225606],
];
const out = bodies.map(([name, body, userDid, timestamp]) => {
  const data = body ? JSON.parse(body) : {};
  const text = stringify({ appId, timestamp, data: data || {}, userDid });
  const digest = crypto.createHash('sha3-256').update(text, 'utf8').digest();
  const sig = '0x' + crypto.sign(null, digest, key).toString('hex');
  const headers = { 'x-app-id': appId, 'x-timestamp': String(timestamp), 'x-component-sig': sig };
  if (userDid !== undefined) headers['x-app-user-did'] = userDid;
  return { name, body, headers, stable_stringify: text, sha3_256: digest.toString('hex') };
});
console.log(JSON.stringify({ generator: 'node ' + process.version + ', json-stable-stringify ' + require('json-stable-stringify/package.json').version + ', node:crypto ed25519 + sha3-256', public_key: '0xE4852B7091317E3622068E62A5127D1FB0D4AE2FC50213295E10652D2F0ABFC7', app_id: appId, vectors: out }, null, 2));
