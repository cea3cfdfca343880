/**
 * Synchronous writes to stdout and stderr: the process exits right after a command, and an
 * asynchronous write could be cut short.
 */
const encoder = new TextEncoder();

function writeAll(stream: { writeSync(p: Uint8Array): number }, text: string): void {
  let bytes = encoder.encode(text);
  while (bytes.length > 0) bytes = bytes.subarray(stream.writeSync(bytes));
}

export function writeStdout(text: string): void {
  writeAll(Deno.stdout, text);
}

export function writeStderr(text: string): void {
  writeAll(Deno.stderr, text);
}

/** Prints `text` and a newline on stdout. */
export function print(text: string): void {
  writeStdout(text + "\n");
}

/** Prints `value` as indented JSON (the `--json` output of read commands). */
export function printJson(value: unknown): void {
  print(JSON.stringify(value, null, 2));
}
