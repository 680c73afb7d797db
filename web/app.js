// SPDX-License-Identifier: MIT
// The dashboard: renders /api/status (the document of `cluster status --json`), follows
// /api/events (server-sent, decoded by the server), and sends actions through the
// operator's injected EIP-1193 wallet: simulated with eth_call first, a revert decoded by
// name from the server's error table, then sent and followed to its receipt.
'use strict';

const $ = (id) => document.getElementById(id);
const state = { status: null, fetchedAt: 0, abi: null, lists: null, account: null, events: [] };
const MAX_EVENTS = 50;
const RECEIPT_POLLS = 240;   // x 500 ms

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  for (const k of kids) e.append(k);
  return e;
}

function short(addr) {
  return addr ? addr.slice(0, 8) + '…' + addr.slice(-6) : '–';
}

// Amounts, times and enums as an operator reads them: the chain's numbers stay in the
// server's documents; the page words them.
const WEI_PER_ETH = 10n ** 18n;

function weiToEth(wei) {
  const w = BigInt(wei), whole = w / WEI_PER_ETH, frac = w % WEI_PER_ETH;
  if (!frac) return whole.toString();
  return whole + '.' + frac.toString().padStart(18, '0').replace(/0+$/, '');
}

function ethToWei(text) {
  const m = /^([0-9]+)(?:\.([0-9]{1,18}))?$/.exec(text);
  if (!m) throw new Error(`'${text}' is not an amount of ETH (0.01)`);
  return BigInt(m[1]) * WEI_PER_ETH + BigInt((m[2] || '').padEnd(18, '0'));
}

function isoTime(unix) {
  const ms = Number(unix) * 1000;
  return Number.isSafeInteger(ms) && ms < 253402300800000
    ? new Date(ms).toISOString().replace('.000Z', 'Z') : String(unix);
}

const MODES = ['none', 'tls', 'wireguard', 'both'];
const RECORD_MODES = ['tls', 'wireguard'];
const BOOT = ['strict', 'permissive'];
const REMOVED = ['burned', 'transferred', 'rebound'];
const CAUSES = ['elected', 'no-confidence', 'left'];
const word = (names, v) => names[Number(v)] || String(v);

// The arguments of events that are not plain numbers: event -> argument -> wording.
const EVENT_ARGS = {
  BootPolicySet: { policy: (v) => word(BOOT, v) },
  ClusterConfigSet: { networkModes: (v) => word(MODES, v) },
  MintingPolicySet: { price: (v) => weiToEth(v) + ' ETH' },
  Withdrawn: { amount: (v) => weiToEth(v) + ' ETH' },
  PeerRemoved: { reason: (v) => word(REMOVED, v) },
  PeerRegistered: { mode: (v) => word(RECORD_MODES, v) },
  PeerUpdated: { mode: (v) => word(RECORD_MODES, v) },
  LeaderChanged: { expiry: isoTime, cause: (v) => word(CAUSES, v) },
  LeaderHeartbeat: { expiry: isoTime },
  LeaderLeaseSet: { leaseSeconds: (v) => v + ' s' },
  PskEpochSet: { epochSeconds: (v) => v + ' s' },
};

// An error's field (units as the server's table gives them) as the CLI prints it.
const ERROR_UNITS = {
  e: (w) => weiToEth(BigInt('0x' + w)) + ' ETH',
  t: (w) => isoTime(BigInt('0x' + w)),
  s: (w) => BigInt('0x' + w) + ' s',
  m: (w) => word(MODES, BigInt('0x' + w)),
  r: (w) => word(RECORD_MODES, BigInt('0x' + w)),
  p: (w) => word(BOOT, BigInt('0x' + w)),
};

function addrCell(addr) {
  if (!addr) return '–';
  return el('code', { title: addr }, short(addr));
}

// ---- rendering ---------------------------------------------------------------------------

function transportOf(row) {
  if (!row.registered) return '–';
  return /^https:\/\//.test(row.endpoint) ? 'dstack gateway (HTTPS)' : 'direct UDP';
}

function renderTokens(s) {
  const body = $('token-rows');
  body.replaceChildren();
  for (const t of s.tokens) {
    const verified = !t.registered ? '–'
      : t.verification === 'valid' ? el('span', { class: 'ok' }, 'yes')
      : el('span', { class: 'bad' }, 'no: ' + t.verification);
    const cells = [
      ['Token', '#' + t.tokenId + (s.leader.tokenId === t.tokenId ? ' (leader)' : '')],
      ['Label', t.label || '–'],
      ['Holder', addrCell(t.holder)],
      ['Bound instance', addrCell(t.instanceId)],
      ['Registered', t.registered ? 'yes' : 'no'],
      ['Verified', verified],
      ['Endpoint', t.registered ? el('code', {}, t.endpoint) : '–'],
      ['Transport', transportOf(t)],
      ['Mode', t.registered ? t.mode : '–'],
      ['Nonce', String(t.registered ? t.nonce : t.storedNonce)],
    ];
    const tr = el('tr', { 'data-token': String(t.tokenId) });
    cells.forEach(([label, v], i) =>
      tr.append(el(i ? 'td' : 'th', i ? { 'data-label': label } : { scope: 'row', 'data-label': label }, v)));
    body.append(tr);
  }
  $('no-tokens').hidden = s.tokens.length > 0;
}

const SVG = 'http://www.w3.org/2000/svg';
function svg(tag, attrs, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

// Nodes on a ring, registered ones joined (the mesh is full), the leader marked, and each
// vote of no confidence of the current term drawn from voter to target.
function renderRing(s) {
  const ring = $('ring'), n = s.tokens.length, R = 95, pos = {};
  ring.replaceChildren(ring.querySelector('desc') || svg('desc', {}));
  const defs = svg('defs', {});
  const marker = svg('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 18, refY: 5,
                                 markerWidth: 6, markerHeight: 6, orient: 'auto' });
  marker.append(svg('path', { d: 'M0,0 L10,5 L0,10 z', class: 'vote-head' }));
  defs.append(marker);
  ring.append(defs, svg('circle', { r: R, class: 'orbit' }));
  s.tokens.forEach((t, i) => {
    const a = -Math.PI / 2 + 2 * Math.PI * i / Math.max(n, 1);
    pos[t.tokenId] = [R * Math.cos(a), R * Math.sin(a)];
  });
  const reg = s.tokens.filter((t) => t.registered);
  for (let i = 0; i < reg.length; i++)
    for (let k = i + 1; k < reg.length; k++) {
      const [x1, y1] = pos[reg[i].tokenId], [x2, y2] = pos[reg[k].tokenId];
      ring.append(svg('line', { x1, y1, x2, y2, class: 'link' }));
    }
  let votes = 0;
  for (const t of s.tokens) {
    if (!t.vote || t.vote.term !== s.leader.term || !pos[t.vote.target]) continue;
    const [x1, y1] = pos[t.tokenId], [x2, y2] = pos[t.vote.target];
    ring.append(svg('line', { x1, y1, x2, y2, class: 'vote', 'marker-end': 'url(#arrow)' }));
    votes++;
  }
  for (const t of s.tokens) {
    const [x, y] = pos[t.tokenId], lead = s.leader.tokenId === t.tokenId;
    const g = svg('g', { class: 'node' + (t.registered ? ' reg' : '') + (lead ? ' lead' : '') });
    g.append(svg('title', {}, `token ${t.tokenId} ${t.label}` + (lead ? ' (leader)' : '')));
    g.append(svg('circle', { cx: x, cy: y, r: lead ? 15 : 12 }));
    g.append(svg('text', { x, y: y + 4, 'text-anchor': 'middle' }, String(t.tokenId)));
    if (lead) g.append(svg('text', { x, y: y - 20, 'text-anchor': 'middle', class: 'crown' }, 'leader'));
    ring.append(g);
  }
  ring.querySelector('desc').textContent =
    `${n} nodes on a ring, ${reg.length} registered` +
    (s.leader.tokenId ? `, token ${s.leader.tokenId} leads` : ', no leader') +
    `, ${votes} vote${votes === 1 ? '' : 's'} of no confidence`;
}

function modesText(m) {
  return ['none', 'tls', 'wireguard', 'tls and wireguard'][m] || String(m);
}

function listText(items, complete) {
  if (!items) return '…';
  if (!items.length) return 'none';
  return items.map(short).join(', ') + (complete ? '' : ' (more than shown)');
}

function renderPolicy(s) {
  const p = s.policy, l = state.lists;
  $('p-max').textContent = String(p.maxNodes);
  $('p-modes').textContent = modesText(p.networkModes);
  $('p-minting').textContent = p.publicMinting ? `public, price ${weiToEth(p.mintPrice)} ETH`
    : `owner only (price ${weiToEth(p.mintPrice)} ETH when public)`;
  $('p-boot').textContent = p.bootPolicy;
  $('p-tcb').textContent = p.requireTcbUpToDate ? 'up-to-date required' : 'any';
  $('p-devices').textContent = p.allowAnyDevice ? 'any device'
    : 'allow list: ' + listText(l && l.devices, l && l.devicesComplete);
  $('p-compose').textContent = listText(l && l.composeHashes, l && l.composeHashesComplete);
  $('p-owner').replaceChildren(addrCell(s.owner));
  $('p-supply').textContent = `${s.totalSupply} live, ${s.peerCount} registered`;
}

function renderLeader(s) {
  const L = s.leader;
  $('leader-token').textContent = L.tokenId
    ? `token ${L.tokenId}` + (L.label ? ` "${L.label}"` : '') : 'none';
  $('leader-address').textContent = L.tokenId && L.overlayAddress ? L.overlayAddress : '–';
  $('leader-instance').replaceChildren(L.tokenId ? addrCell(L.instanceId) : '–');
  $('leader-term').textContent = String(L.term);
  $('leader-votes').textContent = `${L.votes} of ${L.requiredVotes} required`;
  tickLease();
}

// The lease counts down on the chain's clock: the block's time plus what passed since.
function tickLease() {
  const s = state.status;
  if (!s) return;
  if (!s.leader.tokenId) { $('leader-lease').textContent = `${s.leader.lease} s when elected`; return; }
  const now = s.timestamp + (Date.now() - state.fetchedAt) / 1000;
  const left = Math.round(s.leader.expiry - now), until = isoTime(s.leader.expiry);
  $('leader-lease').textContent = left > 0 ? `${left} s left (of ${s.leader.lease} s), until ${until}`
    : `expired at ${until}`;
}

// The manage forms start from the cluster's current policy, not from defaults; a form the
// operator has started to edit is left alone until it is sent.
const POLICY_FORMS = {
  'set-config': (p) => ({ maxNodes: p.maxNodes, modes: p.networkModes }),
  'set-minting': (p) => ({ price: weiToEth(p.mintPrice), public: p.publicMinting ? 1 : 0 }),
  'set-boot-policy': (p) => ({ policy: BOOT.indexOf(p.bootPolicy) }),
  'set-tcb-policy': (p) => ({ policy: p.requireTcbUpToDate ? 1 : 0 }),
  'set-any-device': (p) => ({ any: p.allowAnyDevice ? 1 : 0 }),
};

function fillForms(p) {
  for (const [action, values] of Object.entries(POLICY_FORMS)) {
    const f = document.querySelector(`form[data-action="${action}"]`);
    if (!f || f.dataset.edited) continue;
    for (const [name, v] of Object.entries(values(p))) f.elements[name].value = String(v);
  }
}

function render() {
  const s = state.status;
  $('contract').textContent = s.contract;
  $('chain').textContent = String(s.chainId);
  $('block').textContent = String(s.block);
  renderTokens(s);
  renderRing(s);
  renderPolicy(s);
  renderLeader(s);
  fillForms(s.policy);
}

// ---- data --------------------------------------------------------------------------------

async function getJson(path) {
  const r = await fetch(path, { cache: 'no-store' });
  const j = await r.json();
  if (!r.ok) throw new Error(j.error || r.statusText);
  return j;
}

let refreshing = null, again = false;
async function refresh() {
  if (refreshing) { again = true; return refreshing; }
  refreshing = (async () => {
    try {
      const [s, l] = await Promise.all([getJson('api/status'), getJson('api/lists')]);
      state.status = s; state.lists = l; state.fetchedAt = Date.now();
      render();
    } catch (e) {
      $('conn').textContent = 'reading the cluster failed: ' + e.message;
    }
  })();
  await refreshing;
  refreshing = null;
  if (again) { again = false; refresh(); }
}

function eventText(ev) {
  const log = ev.log;
  if (!log.event) return `unknown event ${log.topic0}`;
  const words = EVENT_ARGS[log.event] || {};
  const args = Object.entries(log.args).map(([k, v]) => `${k}=${words[k] ? words[k](v)
    : typeof v === 'string' && v.length > 20 ? short(v) : v}`);
  return `${log.event}(${args.join(', ')})`;
}

function addEvent(ev) {
  const li = el('li', { 'data-event': ev.log.event || 'unknown' },
                el('span', { class: 'ev-block' }, `block ${ev.block}`), ' ', eventText(ev));
  $('event-log').prepend(li);
  while ($('event-log').children.length > MAX_EVENTS) $('event-log').lastChild.remove();
}

// One stream of the contract's events; the server closes it every minute and the browser
// comes back with Last-Event-ID after the retry hint. Only a longer gap is worth saying.
function follow() {
  const es = new EventSource('api/events');
  let lost = null;
  es.addEventListener('open', () => {
    clearTimeout(lost);
    lost = null;
    $('conn').textContent = 'live: following the contract\'s events';
  });
  es.addEventListener('error', () => {
    if (lost === null)
      lost = setTimeout(() => { $('conn').textContent = 'the server does not answer: reconnecting…'; }, 3000);
  });
  es.addEventListener('rpc-error', (m) => { $('conn').textContent = 'RPC: ' + JSON.parse(m.data); });
  es.addEventListener('cluster', (m) => {
    addEvent(JSON.parse(m.data));
    refresh();
  });
}

// ---- ABI encoding of the few types the actions use -----------------------------------------

function hexWord(n) {
  if (n < 0n || n >= (1n << 256n)) throw new Error('number out of range');
  return n.toString(16).padStart(64, '0');
}

function encodeValue(type, v) {
  if (type === 'address') {
    if (!/^0x[0-9a-fA-F]{40}$/.test(v)) throw new Error(`'${v}' is not a 20-byte 0x address`);
    return { head: v.slice(2).toLowerCase().padStart(64, '0') };
  }
  if (type === 'bytes32') {
    if (!/^0x[0-9a-fA-F]{64}$/.test(v)) throw new Error(`'${v}' is not a 32-byte 0x hash`);
    return { head: v.slice(2).toLowerCase() };
  }
  if (type === 'bool') return { head: hexWord(v === '1' || v === true ? 1n : 0n) };
  if (/^uint\d*$/.test(type)) {
    if (!/^[0-9]+$/.test(String(v))) throw new Error(`'${v}' is not a number`);
    const bits = Number(type.slice(4) || 256), n = BigInt(v);
    if (n >= (1n << BigInt(bits))) throw new Error(`${v} does not fit in ${type}`);
    return { head: hexWord(n) };
  }
  if (type === 'string') {
    const bytes = new TextEncoder().encode(v);
    const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
    return { tail: hexWord(BigInt(bytes.length)) + hex.padEnd(Math.ceil(hex.length / 64) * 64, '0') };
  }
  throw new Error('unsupported type ' + type);
}

function typesOf(signature) {
  const inner = signature.slice(signature.indexOf('(') + 1, -1);
  return inner ? inner.split(',') : [];
}

function encodeCall(action, values) {
  const f = state.abi.functions[action];
  if (!f) throw new Error('unknown action ' + action);
  const types = typesOf(f.signature);
  if (types.length !== values.length) throw new Error(`${action} takes ${types.length} values`);
  const parts = types.map((t, i) => encodeValue(t, values[i]));
  let heads = '', tails = '', offset = 32 * parts.length;
  for (const p of parts) {
    if (p.head !== undefined) { heads += p.head; continue; }
    heads += hexWord(BigInt(offset));
    tails += p.tail;
    offset += p.tail.length / 2;
  }
  return f.selector + heads + tails;
}

// ---- reverts by name ------------------------------------------------------------------------

function revertData(e) {
  for (const d of [e && e.data, e && e.data && e.data.data, e && e.error && e.error.data,
                   e && e.data && e.data.originalError && e.data.originalError.data])
    if (typeof d === 'string' && /^0x[0-9a-fA-F]*$/.test(d)) return d;
  const m = /"(0x[0-9a-fA-F]{8,})"/.exec(JSON.stringify(e) || '');
  return m ? m[1] : null;
}

function wordArg(type, w) {
  if (type === 'address') return '0x' + w.slice(24);
  if (/^uint/.test(type)) return BigInt('0x' + w).toString();
  if (type === 'bool') return BigInt('0x' + w) ? 'true' : 'false';
  return '0x' + w;
}

function decodeRevert(hex) {
  if (!hex || hex.length < 10) return hex === '0x' ? 'no reason given' : 'reverted (no data)';
  const sel = hex.slice(0, 10).toLowerCase(), body = hex.slice(10);
  const argWord = (i) => body.slice(64 * i, 64 * (i + 1));
  if (sel === '0x08c379a0') {
    const len = Number(BigInt('0x' + argWord(1)));
    const bytes = body.slice(128, 128 + 2 * len).match(/../g) || [];
    return new TextDecoder().decode(new Uint8Array(bytes.map((b) => parseInt(b, 16))));
  }
  if (sel === '0x4e487b71') return `Panic(0x${BigInt('0x' + argWord(0)).toString(16)})`;
  const e = state.abi.errors[sel];
  if (!e) return `unknown error ${sel}`;
  const sig = e.signature, fields = e.fields ? e.fields.split(' ') : [];
  const args = typesOf(sig).map((t, i) => {
    const [name, unit] = (fields[i] || '').split(':');
    const w = argWord(i);
    const v = w.length !== 64 ? '<missing>'
      : ERROR_UNITS[unit] && t !== 'address' && t !== 'bytes32' ? ERROR_UNITS[unit](w) : wordArg(t, w);
    return name ? `${name}=${v}` : v;
  });
  return `${sig.slice(0, sig.indexOf('('))}(${args.join(', ')})` + (e.hint ? ': ' + e.hint : '');
}

// ---- the wallet ------------------------------------------------------------------------------

function say(text, kind) {
  const o = $('outcome');
  o.className = kind || '';
  o.textContent = text;
}

function wallet() {
  if (!window.ethereum || typeof window.ethereum.request !== 'function')
    throw new Error('no wallet in this browser (an EIP-1193 provider such as a browser wallet)');
  return window.ethereum;
}

async function connectWallet() {
  const accounts = await wallet().request({ method: 'eth_requestAccounts' });
  if (!accounts || !accounts.length) throw new Error('the wallet gave no account');
  state.account = accounts[0];
  $('account').textContent = 'connected: ' + state.account;
  return state.account;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function act(action, values) {
  const eth = wallet(), s = state.status;
  const from = state.account || await connectWallet();
  const chain = BigInt(await eth.request({ method: 'eth_chainId' }));
  if (chain !== BigInt(s.chainId)) throw new Error(`the wallet is on chain ${chain}, the cluster on ${s.chainId}`);
  const payMint = action === 'mint' && s.policy.publicMinting && from.toLowerCase() !== s.owner.toLowerCase();
  const tx = { from, to: s.contract, data: encodeCall(action, values),
               value: '0x' + (payMint ? BigInt(s.policy.mintPrice) : 0n).toString(16) };
  say(`${action}: simulating…`);
  try {
    await eth.request({ method: 'eth_call', params: [tx, 'latest'] });
  } catch (e) {
    say(`${action} refused (simulated, nothing sent): ${decodeRevert(revertData(e))}`, 'error');
    return;
  }
  const hash = await eth.request({ method: 'eth_sendTransaction', params: [tx] });
  say(`${action}: sent ${hash}, waiting for the receipt…`);
  for (let i = 0; i < RECEIPT_POLLS; i++) {
    const r = await eth.request({ method: 'eth_getTransactionReceipt', params: [hash] });
    if (r) {
      const ok = BigInt(r.status) === 1n;
      say(`${action}: transaction ${hash} ${ok ? 'mined' : 'reverted'} in block ${BigInt(r.blockNumber)}`,
          ok ? 'done' : 'error');
      refresh();
      return;
    }
    await sleep(500);
  }
  say(`${action}: transaction ${hash} sent, no receipt after ${RECEIPT_POLLS / 2} s`, 'error');
}

function formValues(action, f) {
  const v = (n) => f.elements[n].value.trim();
  switch (action) {
    case 'mint': return [v('to'), v('label')];
    case 'bind': return [v('token'), v('instance')];
    case 'unbind': case 'burn': return [v('token')];
    case 'set-config': return [v('maxNodes'), v('modes')];
    case 'set-minting': return [ethToWei(v('price')).toString(), v('public')];
    case 'set-boot-policy': case 'set-tcb-policy': return [v('policy')];
    case 'set-any-device': return [v('any')];
    default: return [v('hash')];
  }
}

function wireForms() {
  for (const f of document.querySelectorAll('form[data-action]')) {
    const edited = () => { f.dataset.edited = '1'; };
    f.addEventListener('input', edited);
    f.addEventListener('change', edited);
    f.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const action = (ev.submitter && ev.submitter.dataset.action) || f.dataset.action;
      const buttons = f.querySelectorAll('button');
      buttons.forEach((b) => { b.disabled = true; });
      try {
        await act(action, formValues(action, f));
      } catch (e) {
        say(`${action}: ${e.message || e}`, 'error');
      } finally {
        buttons.forEach((b) => { b.disabled = false; });
        delete f.dataset.edited;  // sent (or refused): show the chain's value again
        if (state.status) fillForms(state.status.policy);
      }
    });
  }
  $('connect').addEventListener('click', () =>
    connectWallet().catch((e) => say(e.message || String(e), 'error')));
}

async function main() {
  wireForms();
  try {
    state.abi = await getJson('api/abi');
  } catch (e) {
    $('conn').textContent = 'the server did not answer: ' + e.message;
    return;
  }
  await refresh();
  follow();
  setInterval(tickLease, 1000);
}

main();
