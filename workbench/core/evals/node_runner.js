// The Node side of workbench's JavaScript bridge (workbench/core/evals/node_bridge.py).
//
// One request per line on stdin, one reply per line on stdout (newline-delimited JSON):
//   {"id": 1, "fn": {"code": "...", "param": "output", "assertion": true} | {"file": "/abs/x.js", "function": "f"},
//    "args": [input, context], "max": 1048576}
//   -> {"id": 1, "result": ...} | {"id": 1, "undefined": true} | {"id": 1, "error": "TypeError: ...", "where": "x.js:3"}
// Each distinct function is compiled (or its module imported) once. Inline code follows promptfoo: one line is
// an expression (a leading const/let/var statement list gets `return` before its last expression), several
// lines are a function body; the function takes (output or vars, context, process). What user code prints
// goes to stderr, so it never corrupts the replies.
'use strict';

const readline = require('node:readline');
const util = require('node:util');
const { pathToFileURL } = require('node:url');

const reply = process.stdout.write.bind(process.stdout);
for (const name of ['log', 'info', 'warn', 'error', 'debug', 'trace']) {
  console[name] = (...args) => {
    process.stderr.write(util.format(...args) + '\n');
  };
}

const compiled = new Map();

function lastStatementSemicolon(code) {
  let depth = 0;
  let quote = null;
  let last = -1;
  for (let i = 0; i < code.length; i++) {
    const c = code[i];
    if (quote) {
      if (c === '\\') i++;
      else if (c === quote) quote = null;
    } else if (c === '"' || c === "'" || c === '`') quote = c;
    else if ('([{'.includes(c)) depth++;
    else if (')]}'.includes(c)) depth--;
    else if (c === ';' && depth === 0) last = i;
  }
  return last;
}

function assertionBody(code) {
  const text = code.trimEnd();
  if (text.includes('\n')) return text;
  const trimmed = text.trim().replace(/;+\s*$/, '');
  if (!/^(const|let|var)\s/.test(trimmed)) return `return ${trimmed}`;
  const at = lastStatementSemicolon(trimmed);
  if (at === -1 || !trimmed.slice(at + 1).trim()) return trimmed;
  return `${trimmed.slice(0, at + 1)} return ${trimmed.slice(at + 1).trim()}`;
}

function transformBody(code) {
  return code.includes('\n') ? code : `return ${code}`;
}

async function load(fn) {
  if (fn.code !== undefined) {
    const body = fn.assertion ? assertionBody(fn.code) : transformBody(fn.code);
    return new Function(fn.param, 'context', 'process', body);
  }
  const module = await import(pathToFileURL(fn.file).href);
  const wanted = fn.function;
  const candidates = wanted
    ? [module[wanted], module.default && module.default[wanted]]
    : [module.default, module.default && module.default.default];
  const found = candidates.find((c) => typeof c === 'function');
  if (!found) {
    const name = fn.file.split(/[\\/]/).pop();
    throw new Error(wanted ? `${name} exports no function ${wanted}` : `${name} exports no function (module.exports or default)`);
  }
  return found;
}

function where(error, fn) {
  const stack = String((error && error.stack) || '');
  if (fn.file) {
    const line = stack.split('\n').find((l) => l.includes(fn.file));
    const match = line && line.match(/:(\d+):\d+\)?\s*$/);
    return match ? `${fn.file.split(/[\\/]/).pop()}:${match[1]}` : '';
  }
  const match = stack.match(/<anonymous>:(\d+):\d+/);
  return match ? `inline code, line ${Math.max(1, Number(match[1]) - 2)}` : '';
}

async function handle(request) {
  const fn = request.fn;
  const key = JSON.stringify(fn);
  try {
    if (!compiled.has(key)) compiled.set(key, load(fn));
    const callable = await compiled.get(key);
    const result = await callable(...request.args, process);
    if (result === undefined) return { id: request.id, undefined: true };
    const text = JSON.stringify({ id: request.id, result });
    if (text === undefined) return { id: request.id, error: `returned a ${typeof result}, which is not JSON`, where: '' };
    if (text.length > request.max) {
      return { id: request.id, error: `returned ${text.length} characters, more than the limit of ${request.max}`, where: '' };
    }
    return text;
  } catch (error) {
    const message = error instanceof Error ? `${error.name}: ${error.message}` : `threw ${util.inspect(error)}`;
    return { id: request.id, error: message, where: where(error, fn) };
  }
}

const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
lines.on('line', async (line) => {
  if (!line.trim()) return;
  const request = JSON.parse(line);
  const answer = await handle(request);
  reply((typeof answer === 'string' ? answer : JSON.stringify(answer)) + '\n');
});
lines.on('close', () => process.exit(0));
