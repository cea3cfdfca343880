/**
 * Lua 5.4's pattern matcher (lstrlib.c), ported so that matching can be interrupted: the C
 * matcher backtracks without ever returning to the VM, so a pathological pattern would run far
 * past any limit. The port works on the strings where they live in wasm memory (Lua strings are
 * NUL-terminated, so reading the byte at an end pointer sees 0 exactly as the C code does) and
 * mirrors the C control flow and error messages. Positions are absolute addresses; -1 is NULL.
 */

export const CAP_UNFINISHED = -1;
export const CAP_POSITION = -2;
const LUA_MAXCAPTURES = 32;
/** lstrlib's MAXCCALLS: the recursion limit of `match`. */
const MAXCCALLS = 200;
/** Matching steps between two looks at the clock. */
const CHECK_EVERY = 10_000;

const ESC = 0x25; // %
const SPECIALS = new Set([..."^$*+?.([%-"].map((c) => c.charCodeAt(0)));

export interface MatchHost {
  /** Raises a Lua error; never returns. */
  raise(message: string): never;
  /** Called every few thousand steps; raises when the call is out of time. */
  checkTime(): void;
}

export class Matcher {
  /** The wasm heap; the binding refreshes it after anything that may have grown memory. */
  h: Uint8Array;
  srcInit = 0;
  srcEnd = 0;
  pEnd = 0;
  level = 0;
  readonly capInit = new Int32Array(LUA_MAXCAPTURES);
  readonly capLen = new Int32Array(LUA_MAXCAPTURES);
  #matchdepth = MAXCCALLS;
  #countdown = CHECK_EVERY;
  readonly #host: MatchHost;

  constructor(host: MatchHost, heap: Uint8Array) {
    this.#host = host;
    this.h = heap;
  }

  prepare(s: number, ls: number, pEnd: number): void {
    this.srcInit = s;
    this.srcEnd = s + ls;
    this.pEnd = pEnd;
  }

  /** Starts a match attempt (reprepstate). */
  reset(): void {
    this.level = 0;
  }

  tick(): void {
    if (--this.#countdown === 0) {
      this.#countdown = CHECK_EVERY;
      this.#host.checkTime();
    }
  }

  /** End of the match of pattern `p` at subject position `s`, or -1. */
  match(s: number, p: number): number {
    if (this.#matchdepth-- === 0) this.#host.raise("pattern too complex");
    this.tick();
    const h = this.h;
    for (;;) {
      if (p === this.pEnd) break;
      const pc = h[p];
      if (pc === 0x28) { // (
        s = h[p + 1] === 0x29
          ? this.#startCapture(s, p + 2, CAP_POSITION)
          : this.#startCapture(s, p + 1, CAP_UNFINISHED);
        break;
      }
      if (pc === 0x29) { // )
        s = this.#endCapture(s, p + 1);
        break;
      }
      if (pc === 0x24 && p + 1 === this.pEnd) { // $ at the end of the pattern
        s = s === this.srcEnd ? s : -1;
        break;
      }
      if (pc === ESC) {
        const next = h[p + 1];
        if (next === 0x62) { // %b
          s = this.#matchBalance(s, p + 2);
          if (s !== -1) {
            p += 4;
            continue;
          }
          break;
        }
        if (next === 0x66) { // %f
          p += 2;
          if (h[p] !== 0x5b) this.#host.raise("missing '[' after '%f' in pattern");
          const ep = this.#classEnd(p);
          const previous = s === this.srcInit ? 0 : h[s - 1];
          if (
            !this.#matchBracketClass(previous, p, ep - 1) &&
            this.#matchBracketClass(h[s], p, ep - 1)
          ) {
            p = ep;
            continue;
          }
          s = -1;
          break;
        }
        if (next >= 0x30 && next <= 0x39) { // %0-%9
          s = this.#matchCapture(s, next);
          if (s !== -1) {
            p += 2;
            continue;
          }
          break;
        }
      }
      // A single-character class with an optional quantifier.
      const ep = this.#classEnd(p);
      const suffix = h[ep];
      if (!this.#singleMatch(s, p, ep)) {
        if (suffix === 0x2a || suffix === 0x3f || suffix === 0x2d) { // * ? - accept empty
          p = ep + 1;
          continue;
        }
        s = -1;
        break;
      }
      if (suffix === 0x3f) { // ?
        const res = this.match(s + 1, ep + 1);
        if (res !== -1) {
          s = res;
          break;
        }
        p = ep + 1;
        continue;
      }
      if (suffix === 0x2b) { // +
        s = this.#maxExpand(s + 1, p, ep);
        break;
      }
      if (suffix === 0x2a) { // *
        s = this.#maxExpand(s, p, ep);
        break;
      }
      if (suffix === 0x2d) { // -
        s = this.#minExpand(s, p, ep);
        break;
      }
      s++;
      p = ep;
    }
    this.#matchdepth++;
    return s;
  }

  /** Plain substring search (lmemfind): address of the first occurrence, or -1. */
  find(s1: number, l1: number, s2: number, l2: number): number {
    if (l2 === 0) return s1;
    if (l2 > l1) return -1;
    const h = this.h;
    const first = h[s2];
    const last = s1 + l1 - l2;
    for (let at = s1; at <= last; at++) {
      if (h[at] !== first) continue;
      let i = 1;
      while (i < l2 && h[at + i] === h[s2 + i]) {
        i++;
        this.tick();
      }
      if (i === l2) return at;
      this.tick();
    }
    return -1;
  }

  #classEnd(p: number): number {
    const h = this.h;
    const c = h[p++];
    if (c === ESC) {
      if (p === this.pEnd) this.#host.raise("malformed pattern (ends with '%')");
      return p + 1;
    }
    if (c === 0x5b) { // [
      if (h[p] === 0x5e) p++;
      do {
        if (p === this.pEnd) this.#host.raise("malformed pattern (missing ']')");
        if (h[p++] === ESC && p < this.pEnd) p++;
      } while (h[p] !== 0x5d);
      return p + 1;
    }
    return p;
  }

  #singleMatch(s: number, p: number, ep: number): boolean {
    if (s >= this.srcEnd) return false;
    const h = this.h;
    const c = h[s];
    switch (h[p]) {
      case 0x2e: // .
        return true;
      case ESC:
        return matchClass(c, h[p + 1]);
      case 0x5b:
        return this.#matchBracketClass(c, p, ep - 1);
      default:
        return h[p] === c;
    }
  }

  /** `p` is at the '[' and `ec` at the closing ']'. */
  #matchBracketClass(c: number, p: number, ec: number): boolean {
    const h = this.h;
    let sig = true;
    if (h[p + 1] === 0x5e) { // ^
      sig = false;
      p++;
    }
    while (++p < ec) {
      if (h[p] === ESC) {
        p++;
        if (matchClass(c, h[p])) return sig;
      } else if (h[p + 1] === 0x2d && p + 2 < ec) { // range a-z
        p += 2;
        if (h[p - 2] <= c && c <= h[p]) return sig;
      } else if (h[p] === c) {
        return sig;
      }
    }
    return !sig;
  }

  #matchBalance(s: number, p: number): number {
    if (p >= this.pEnd - 1) this.#host.raise("malformed pattern (missing arguments to '%b')");
    const h = this.h;
    if (h[s] !== h[p]) return -1;
    const open = h[p];
    const close = h[p + 1];
    let depth = 1;
    while (++s < this.srcEnd) {
      this.tick();
      const c = h[s];
      if (c === close) {
        if (--depth === 0) return s + 1;
      } else if (c === open) {
        depth++;
      }
    }
    return -1;
  }

  #maxExpand(s: number, p: number, ep: number): number {
    let i = 0;
    while (this.#singleMatch(s + i, p, ep)) {
      i++;
      this.tick();
    }
    for (; i >= 0; i--) {
      const res = this.match(s + i, ep + 1);
      if (res !== -1) return res;
    }
    return -1;
  }

  #minExpand(s: number, p: number, ep: number): number {
    for (;;) {
      const res = this.match(s, ep + 1);
      if (res !== -1) return res;
      if (!this.#singleMatch(s, p, ep)) return -1;
      s++;
    }
  }

  #startCapture(s: number, p: number, what: number): number {
    const level = this.level;
    if (level >= LUA_MAXCAPTURES) this.#host.raise("too many captures");
    this.capInit[level] = s;
    this.capLen[level] = what;
    this.level = level + 1;
    const res = this.match(s, p);
    if (res === -1) this.level--;
    return res;
  }

  #endCapture(s: number, p: number): number {
    const l = this.#captureToClose();
    this.capLen[l] = s - this.capInit[l];
    const res = this.match(s, p);
    if (res === -1) this.capLen[l] = CAP_UNFINISHED;
    return res;
  }

  #captureToClose(): number {
    for (let level = this.level - 1; level >= 0; level--) {
      if (this.capLen[level] === CAP_UNFINISHED) return level;
    }
    return this.#host.raise("invalid pattern capture");
  }

  #matchCapture(s: number, digit: number): number {
    const l = this.#checkCapture(digit);
    const len = this.capLen[l];
    // A position capture has a negative length (CAP_POSITION); stock Lua's size_t comparison
    // makes it never match. Letting it through would move the match end backwards, past the
    // subject, into memory shared with other queues' Lua states.
    if (len < 0 || this.srcEnd - s < len) return -1;
    const h = this.h;
    const init = this.capInit[l];
    for (let i = 0; i < len; i++) {
      if (h[init + i] !== h[s + i]) return -1;
      this.tick();
    }
    return s + len;
  }

  #checkCapture(digit: number): number {
    const l = digit - 0x31; // '1'
    if (l < 0 || l >= this.level || this.capLen[l] === CAP_UNFINISHED) {
      this.#host.raise(`invalid capture index %${l + 1}`);
    }
    return l;
  }
}

/** Whether the pattern has no magic character, so that find may search it as plain text. */
export function noSpecials(h: Uint8Array, p: number, lp: number): boolean {
  for (let i = p; i < p + lp; i++) {
    if (SPECIALS.has(h[i])) return false;
  }
  return true;
}

/** C-locale character classes, as lstrlib's match_class. */
function matchClass(c: number, cl: number): boolean {
  let res: boolean;
  const isUpperClass = cl >= 0x41 && cl <= 0x5a;
  switch (isUpperClass ? cl + 0x20 : cl) {
    case 0x61: // a
      res = isAlpha(c);
      break;
    case 0x63: // c
      res = c < 0x20 || c === 0x7f;
      break;
    case 0x64: // d
      res = isDigit(c);
      break;
    case 0x67: // g
      res = c > 0x20 && c < 0x7f;
      break;
    case 0x6c: // l
      res = c >= 0x61 && c <= 0x7a;
      break;
    case 0x70: // p
      res = c > 0x20 && c < 0x7f && !isAlpha(c) && !isDigit(c);
      break;
    case 0x73: // s
      res = c === 0x20 || (c >= 0x09 && c <= 0x0d);
      break;
    case 0x75: // u
      res = c >= 0x41 && c <= 0x5a;
      break;
    case 0x77: // w
      res = isAlpha(c) || isDigit(c);
      break;
    case 0x78: // x
      res = isDigit(c) || (c >= 0x61 && c <= 0x66) || (c >= 0x41 && c <= 0x46);
      break;
    case 0x7a: // z, deprecated but still in wasmoon's build
      res = c === 0;
      break;
    default:
      return cl === c;
  }
  return isUpperClass ? !res : res;
}

function isAlpha(c: number): boolean {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a);
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}
