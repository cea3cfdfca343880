// ignoreBOM keeps a leading U+FEFF: keys are compared byte for byte and must round-trip.
const lossyDecoder = new TextDecoder("utf-8", { ignoreBOM: true });
const strictDecoder = new TextDecoder("utf-8", { ignoreBOM: true, fatal: true });

/**
 * Decodes bytes that must be valid UTF-8 (RFC 3629: no overlongs, surrogates or code points above
 * U+10FFFF); undefined when they are not. Short ASCII strings, the common case for keys, skip
 * TextDecoder's fixed cost.
 */
export function decodeStrictUtf8(bytes: Uint8Array): string | undefined {
  if (bytes.length <= 64 && isAscii(bytes)) return String.fromCharCode(...bytes);
  try {
    return strictDecoder.decode(bytes);
  } catch {
    return undefined;
  }
}

/** Decodes arbitrary bytes for messages and logs, replacing invalid sequences with U+FFFD. */
export function decodeLossyUtf8(bytes: Uint8Array): string {
  if (bytes.length <= 64 && isAscii(bytes)) return String.fromCharCode(...bytes);
  return lossyDecoder.decode(bytes);
}

function isAscii(bytes: Uint8Array): boolean {
  for (let i = 0; i < bytes.length; i++) {
    if (bytes[i] >= 0x80) return false;
  }
  return true;
}
