// Reading the test SMTP server's Maildir as the subscriber's mail program would: the newest
// message to an address (scripts/smtp-maildir.py files each one under by-rcpt/<address>/new/),
// its text and its attachments, decoded from MIME (multipart, base64, quoted-printable).
'use strict';

const fs = require('node:fs');
const path = require('node:path');

function splitHead(raw) {
  const at = raw.search(/\r?\n\r?\n/);
  const head = at < 0 ? raw : raw.slice(0, at);
  const body = at < 0 ? '' : raw.slice(at).replace(/^\r?\n\r?\n/, '');
  const headers = {};
  for (const line of head.replace(/\r?\n[ \t]+/g, ' ').split(/\r?\n/)) {
    const i = line.indexOf(':');
    if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  return { headers, body };
}

function decodeQp(text) {
  const bytes = [];
  const soft = text.replace(/=\r?\n/g, '');
  for (let i = 0; i < soft.length; i++) {
    if (soft[i] === '=' && /^[0-9A-F]{2}$/i.test(soft.slice(i + 1, i + 3))) {
      bytes.push(parseInt(soft.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      bytes.push(...Buffer.from(soft[i], 'utf8'));
    }
  }
  return Buffer.from(bytes);
}

// A header parameter, also when split and encoded as RFC 2231 says (`name*0*=utf-8''a%20b;
// name*1=...`), as lettre writes long attachment names.
function param(header, key) {
  const parts = [];
  let plain = null;
  for (const m of header.matchAll(/;\s*([A-Za-z-]+)(\*(\d+))?(\*)?=("([^"]*)"|[^;\s]*)/g)) {
    if (m[1].toLowerCase() !== key) continue;
    let value = m[6] !== undefined ? m[6] : m[5];
    if (m[4]) value = decodeURIComponent(value.replace(/^[^']*'[^']*'/, ''));
    if (m[3] !== undefined) parts[Number(m[3])] = value;
    else plain = value;
  }
  return parts.length ? parts.join('') : plain;
}

function decodeBody(headers, body) {
  const cte = (headers['content-transfer-encoding'] || '7bit').toLowerCase();
  if (cte === 'base64') return Buffer.from(body.replace(/\s+/g, ''), 'base64');
  if (cte === 'quoted-printable') return decodeQp(body);
  return Buffer.from(body, 'utf8');
}

// A MIME entity → {text: [..], attachments: [{filename, contentType, content}]}.
function walk(raw, out) {
  const { headers, body } = splitHead(raw);
  const type = headers['content-type'] || 'text/plain';
  const boundary = /boundary="?([^";]+)"?/i.exec(type);
  if (/^multipart\//i.test(type) && boundary) {
    const parts = body.split(`--${boundary[1]}`).slice(1);
    for (const part of parts) {
      if (part.startsWith('--')) break;
      walk(part.replace(/^\r?\n/, ''), out);
    }
    return out;
  }
  const disposition = headers['content-disposition'] || '';
  const name = param(disposition, 'filename') || param(type, 'name');
  const content = decodeBody(headers, body);
  if (/attachment/i.test(disposition) || !/^text\//i.test(type)) {
    out.attachments.push({ filename: name || '', contentType: type, content });
  } else {
    out.text.push(content.toString('utf8'));
  }
  return out;
}

function parse(raw) {
  const { headers } = splitHead(raw);
  const out = walk(raw, { text: [], attachments: [] });
  return { headers, subject: headers.subject || '', text: out.text.join('\n'), attachments: out.attachments };
}

// Every message to `address` so far, oldest first.
function messagesTo(maildir, address) {
  const dir = path.join(maildir, 'by-rcpt', address.toLowerCase(), 'new');
  let names;
  try { names = fs.readdirSync(dir); } catch { return []; }
  return names
    .map((n) => ({ n, t: fs.statSync(path.join(dir, n)).mtimeMs }))
    .sort((a, b) => a.t - b.t || (a.n < b.n ? -1 : 1))
    .map(({ n }) => parse(fs.readFileSync(path.join(dir, n), 'latin1')));
}

// Waits (bounded) until a message to `address` satisfies `pred`; returns the newest such.
async function waitFor(maildir, address, pred, what, ms = 15000) {
  const until = Date.now() + ms;
  for (;;) {
    const found = messagesTo(maildir, address).filter(pred);
    if (found.length) return found[found.length - 1];
    if (Date.now() > until) throw new Error(`no e-mail to ${address}: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

module.exports = { parse, messagesTo, waitFor };
