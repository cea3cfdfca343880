import assert from "node:assert/strict";
import { LuaFactory } from "wasmoon";
import { testEngine } from "./testing.ts";

// Each case runs in the engine's sandbox and in stock wasmoon (the C library functions that
// pattern.ts, strlib.ts and guards.ts replace); results and error texts must agree.
const HARNESS = `
local function ser(...)
  local t = {}
  for i = 1, select('#', ...) do local v = select(i, ...) t[#t+1] = type(v) .. ":" .. (type(v) == "string" and string.format("%q", v) or tostring(v)) end
  return table.concat(t, "|")
end
function run(f) local r = table.pack(pcall(f)) return ser(table.unpack(r, 1, r.n)) end
`;

const CASES = [
  // A back-reference to a position capture never matches (it must not read before the subject).
  `return string.find("abc", "()%1"), string.gsub("abc", "b()%1", "X"), string.gsub("secret", "()%1", "")`,
  `return string.match("abab", "(ab)%1"), string.find("xyy", "(y)%1")`,
  `return string.match("a\\tb~\\127", "%c"), string.match("a b", "%g+"), string.match("ab12", "%A+")`,
  `return string.match("foo_bar9 x", "[%w_]+"), string.match("  x y", "[^%s]+")`,
  `return string.match("a-", "[a-]+"), string.match("]-", "[]-]+"), string.match("^x", "[%^x]+")`,
  `return string.find("THE (quick) fox", "%f[%a]%a+$")`,
  `return string.match("((a)", "%b()"), string.match("x", "%b()")`,
  `return string.gsub("abc", "^", ">"), string.gsub("abc", "$", "<"), string.gsub("abc", "b", "x", 0)`,
  `return string.find("abc", "c", -1), string.find("abc", "a", -10), ("x"):find("")`,
  `local t = {} for a in ("aaa"):gmatch("^a") do t[#t+1] = a end return #t`,
  `local t = {} for a in ("abc"):gmatch(".", 10) do t[#t+1] = a end return #t`,
  `return string.match("x", string.rep("(", 33) .. "x" .. string.rep(")", 33))`,
  `return string.match("abcd", "((a)(b)((c)(d)))")`,
  `return string.gsub("abc", "%w", "%1")`,
  `return string.gsub("hello", "()l", {[3] = "L"})`,
  `return string.match("aaab", "a-b"), string.match("b", "a?b"), string.match("aab", "a+?")`,
  `return string.match("2024-01-15", "(%d+)-(%d+)-(%d+)")`,
  `return string.gsub("a,b,,c", ",", ";", 2)`,
  `return string.find("a\\0b\\0c", "\\0c"), string.find("a\\0b", "%z")`,
  `return string.gsub("abc", "", "")`,
  `return string.match(string.rep("a", 1000), ".-b")`,
  `return string.match("x", "[")`,
  `return string.match("x", "[^")`,
  `return string.match("x", "(")`,
  `return string.gsub("abc", ".", {a = true})`,
  `return string.gsub("abc", "(a)", function(x) return nil end)`,
  `return string.gsub("abc", "a", function() error("inside") end)`,
  `return string.gsub(123, 2, 9)`,
  `return string.find("abc", "b", "2")`,
  `return string.find("abc", "b", 1.5)`,
  `return string.gmatch("abc")`,
  `return string.gsub("x", "x", "%0%0", -1)`,
  `return string.find("hello world", "o w")`,
  `return string.find("hello world", "o", 6)`,
  `return string.find("hello", "l+")`,
  `return string.find("hello", "", 10)`,
  `return string.find("hello", "", 6)`,
  `return string.find("hello", "", -100)`,
  `return string.find("a.b", ".", 1, true)`,
  `return string.match("key=value", "(%w+)=(%w+)")`,
  `return string.match("  trim  ", "^%s*(.-)%s*$")`,
  `return string.match("hello", "()ll()")`,
  `return string.match("THE (quick) fox", "%((%a+)%)")`,
  `return string.match("f(a(b)c)d", "%b()")`,
  `return string.match("THE quick", "%f[%a]%a+", 4)`,
  `return string.match("abcabc", "(abc)%1")`,
  `return string.match("x", "%")`,
  `return string.match("x", "[a")`,
  `return string.match("x", "(()")`,
  `return string.match("x", "%1")`,
  `return string.match("x", "x)")`,
  `return string.match("x", "%f")`,
  `return string.match("x", "%bx")`,
  `return string.match("hello", "^(h)(e)")`,
  `return string.match("[]", "[]]")`,
  `return string.match("a-b", "[a%-]+")`,
  `return string.match("z", "[^a-y]")`,
  `return string.match("\\0a\\0", "%z")`,
  `return string.match("a\\0b", "a\\0b")`,
  `return string.match(12345, 3)`,
  `return string.match("x", nil)`,
  `return string.gsub("hello world", "o", "0")`,
  `return string.gsub("hello world", "(o)", "[%1%1]")`,
  `return string.gsub("hello", "", "-")`,
  `return string.gsub("abc", "%w", "%0%0")`,
  `return string.gsub("abc", "%w", "%2")`,
  `return string.gsub("abc", "%w", "%")`,
  `return string.gsub("abc", "%w", "%x")`,
  `return string.gsub("abc", "%w", "%%")`,
  `return string.gsub("hello world", "%w+", {hello = "HI", world = false})`,
  `return string.gsub("hello world", "%w+", function(w) return w:upper() end)`,
  `return string.gsub("hello world", "%w+", function(w) return {} end)`,
  `return string.gsub("abc", "b", 5)`,
  `return string.gsub("abc", "b", true)`,
  `return string.gsub("aaa", "a", "b", 2)`,
  `return string.gsub("aaa", "^a", "b")`,
  `return string.gsub("abc", "()", "%1")`,
  `return string.gsub("abc", ".", {a = 1, b = 2.5})`,
  `local t = {} for k, v in string.gmatch("a=1, b=2", "(%w+)=(%w+)") do t[#t+1] = k .. v end return table.concat(t, ",")`,
  `local t = {} for w in string.gmatch("one two three", "%a+") do t[#t+1] = w end return table.concat(t, ",")`,
  `local t = {} for w in string.gmatch("abc", "") do t[#t+1] = "[" .. w .. "]" end return #t`,
  `local t = {} for a, b in string.gmatch("abc", "()(.)") do t[#t+1] = a .. b end return table.concat(t)`,
  `local t = {} for w in string.gmatch("hello world", "%a+", 3) do t[#t+1] = w end return table.concat(t, ",")`,
  `local t = {} for w in ("a1b2c3"):gmatch("%d") do t[#t+1] = w end return table.concat(t)`,
  `return ("x"):rep(3, ",")`,
  `return string.rep("", 1e5)`,
  `return string.rep("ab", 2.5)`,
  `return string.rep("", "3")`,
  `return #string.rep("", 3, "x")`,
  `local t = table.move({1,2,3}, 1, 3, 2) return table.concat(t, ",")`,
  `local a = {} for i = 1, 1000 do a[i] = i end table.move(a, 1, 1000, 3) return a[1], a[3], a[1002], #a`,
  `local a = {} for i = 1, 1000 do a[i] = i end table.move(a, 5, 1000, 1) return a[1], a[996], #a`,
  `local a = {} for i = 1, 1000 do a[i] = i end local b = table.move(a, 1, 1000, 1, {}) return #b, b[1000]`,
  `return table.move({}, 1, 1.5, 1)`,
  `return table.move({}, 1, 2)`,
  `return select("#", table.move({}, -1, 2000, 1))`,
  `return setmetatable({})`,
  `return getmetatable(setmetatable({}, {__index = {}})) ~= nil`,
  `return string.find(("a"):rep(10), ".-.-b")`,
  `return string.find("abc", "b", 2^53)`,
  `return string.find("abc", "[%a-z]")`,
  `return string.match("hello", "%u")`,
  `return string.match("Hello", "%U+")`,
  `return string.match(" \\t\\n", "%s+") == " \\t\\n"`,
  `return string.match("x!y", "%p")`,
  `return string.match("0xFF", "%x+", 3)`,
  `return string.find("a+b", "+", 1, true)`,
  `return string.gsub("abc", "(b)(c)", "%2%1")`,
  `return string.gsub("hello", "l*", "x")`,
  `return string.gsub("a b", "%s*", "_")`,
  `return math.tointeger("3"), math.tointeger(3.0), math.tointeger(3.5)`,
  `return string.format("%q", string.gsub("a\\nb", "\\n", "\\\\n"))`,
  `return string.rep("x", 2^31)`,
  `return string.rep("x", 2^30, "yy")`,
  `return string.rep("x", -1)`,
  `return string.rep()`,
  `return string.rep("x")`,
  `return string.rep({}, 2)`,
  `return string.rep(12, 2, 3)`,
  `return ("ab"):rep(3)`,
  `return table.move({1,2,3}, 1, 3, 3)[5]`,
  `local a = {1,2,3,4,5} table.move(a, 2, 5, 1) return table.concat(a, ",")`,
  `local a = {1,2,3,4,5} table.move(a, 1, 4, 2) return table.concat(a, ",")`,
  `return table.move(1, 1, 2, 3)`,
  `return table.move({}, 1, 2, 3, 5)`,
  `return table.move({}, -5, math.maxinteger, 1)`,
  `return table.move({}, 1, math.maxinteger, 2)`,
  `local log = {} local src = setmetatable({}, {__index = function(_, k) log[#log+1] = "r" .. k return k end}) local dst = setmetatable({}, {__newindex = function(t, k, v) log[#log+1] = "w" .. k rawset(t, k, v) end}) table.move(src, 1, 3, 2, dst) return table.concat(log, ",")`,
  `local log = {} local t = setmetatable({}, {__index = function(_, k) log[#log+1] = "r" .. k return k end, __newindex = function(t, k, v) log[#log+1] = "w" .. k end}) table.move(t, 1, 3, 2) return table.concat(log, ",")`,
  `local u = setmetatable({}, {__index = function(_, k) return k * 2 end}) return table.move(u, 1, 2, 1, {})[2]`,
  `return setmetatable({}, 5)`,
  `return setmetatable(5, {})`,
  `local t = setmetatable({}, {__metatable = "locked"}) return setmetatable(t, {})`,
  `local t = {} return setmetatable(t, nil) == t`,
];

async function stockResults(code: string): Promise<string[]> {
  const results: string[] = [];
  const lua = await new LuaFactory().createEngine();
  try {
    lua.global.set("emit", (line: string) => results.push(line));
    lua.doStringSync(`${code} for _, c in ipairs(CASES) do emit(run(c)) end`);
  } finally {
    lua.global.close();
  }
  return results;
}

async function sandboxResults(code: string): Promise<string[]> {
  const { engine, events, failures } = await testEngine({ timeoutMs: 1000 });
  engine.install("q", {
    onEnqueue:
      `${code} function on_enqueue() for _, c in ipairs(CASES) do print(run(c)) end return {} end`,
    onFailure: "",
  });
  engine.onEnqueue("q", { headers: {}, payloadSize: 0, queue: "q" });
  assert.deepEqual(failures(), []);
  return events.flatMap((e) => e.type === "print" ? [e.message] : []);
}

/** Error positions name different chunks; table addresses differ. */
function normalise(line: string): string {
  return line.replace(/\[string \\?"[^"\\]*\\?"\]:\d+:/g, "POS:").replace(/0x[0-9a-f]+/g, "ADDR");
}

Deno.test("string and table functions behave like Lua's own", async () => {
  const code = HARNESS + `CASES = {${CASES.map((c) => `function() ${c} end`).join(",\n")}}`;
  const [stock, sandbox] = [await stockResults(code), await sandboxResults(code)];
  assert.equal(sandbox.length, CASES.length);
  for (let i = 0; i < CASES.length; i++) {
    assert.equal(normalise(sandbox[i]), normalise(stock[i]), CASES[i]);
  }
});
