/** Line-by-line reading of stdin, for the benchmark's client subprocesses (job, then "go"). */
const reader = Deno.stdin.readable.pipeThrough(new TextDecoderStream()).getReader();
let buf = "";

/** The next line of stdin, without its newline; throws once stdin is closed. */
export async function line(): Promise<string> {
  while (!buf.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error("stdin closed");
    buf += value;
  }
  const i = buf.indexOf("\n");
  const l = buf.slice(0, i);
  buf = buf.slice(i + 1);
  return l;
}
