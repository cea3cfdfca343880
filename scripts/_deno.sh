# Sourced by the launchers: sets DENO to the pinned Deno binary, installing it from the npm
# registry on first use (npx caches it; the resolved path is remembered so that later starts
# exec the binary directly and signals reach the broker itself).
DENO_VERSION="2.9.3"
_fila_cache="${XDG_CACHE_HOME:-$HOME/.cache}/fila"
_fila_pin="$_fila_cache/deno-$DENO_VERSION.path"
DENO=""
if [ -r "$_fila_pin" ]; then
  DENO="$(cat "$_fila_pin")"
  [ -x "$DENO" ] || DENO=""
fi
if [ -z "$DENO" ]; then
  DENO="$(npx -y "deno@$DENO_VERSION" eval --quiet 'console.log(Deno.execPath())' 2>/dev/null | tail -n 1)"
  if [ ! -x "$DENO" ]; then
    echo "error: could not install deno@$DENO_VERSION with npx (is Node.js/npm installed?)" >&2
    exit 1
  fi
  mkdir -p "$_fila_cache" && printf '%s\n' "$DENO" > "$_fila_pin"
fi
export DENO
