// lua.md §1 ("Lua 5.4 semantics") and §5 (sandbox libraries): expressions evaluated inside an
// on_enqueue hook must give the results of reference Lua 5.4. The broker replaces string.find,
// match, gmatch and gsub with its own interruptible matcher (for the wall-clock limit of §6), so
// the pattern functions get most of the cases. Expected values were produced with the stock Lua
// 5.4 interpreter (lstrlib.c etc.), each result serialised as its return values joined by "|".
// Error texts lose their "[string …]:<line>: " prefix, and the function name in "bad argument #n
// to '<name>'" is not compared: for a C function called through pcall stock Lua finds its global
// name through package.loaded ('string.rep'), which the sandbox does not have ('?').
import assert from "node:assert/strict";
import { scenario, sharedBroker } from "./harness.ts";
import { drain, scriptedQueue } from "./lua_helpers.ts";

/** [Lua expression, expected serialised result]. */
const CASES: Array<[string, string]> = [
  ["3 // 2", "1"],
  ["3.0 // 2", "1.0"],
  ["7 // 0.0", "inf"],
  ["-7 // 2", "-4"],
  ["-7 % 3", "2"],
  ["7 % -3", "-2"],
  ["5.5 % 2", "1.5"],
  ["math.type(1), math.type(1.0), math.type('1')", "integer|float|nil"],
  ["1e15", "1e+15"],
  ["2^53", "9.007199254741e+15"],
  ["10 / 2", "5.0"],
  ["-0.0", "-0.0"],
  ["7 & 3, 7 | 8, 7 ~ 2, ~0, 1 << 62, 1 << 64, -1 >> 60", "3|15|5|-1|4611686018427387904|0|15"],
  ["math.maxinteger + 1 == math.mininteger", "true"],
  ["math.floor(3.7), math.ceil(3.2), math.type(math.floor(3.7))", "3|4|integer"],
  ["math.tointeger(3.0), math.tointeger(3.5)", "3|nil"],
  [
    "tonumber('0x10'), tonumber('10', 2), tonumber('  5  '), tonumber('5x'), tonumber('1e2'), tonumber('z', 36)",
    "16|2|5|nil|100.0|35",
  ],
  [
    "string.format('%5.2f|%d|%s|%x|%g|%5s|%-5s|', 3.14159, 42, 'x', 255, 0.1, 'ab', 'ab')",
    " 3.14|42|x|ff|0.1|   ab|ab   |",
  ],
  ["string.format('%q', 'a\\nb\\0c\"')", '"a\\\nb\\0c\\""'],
  ["string.format('%s %s', nil, true)", "nil true"],
  ["string.format('%i', 3.0)", "3"],
  ["string.find('hello world', 'o w')", "5|7"],
  ["string.find('hello', 'l+')", "3|4"],
  ["string.find('a.b', '.', 1, true)", "2|2"],
  ["string.find('abc', 'b', -1)", "nil"],
  ["string.find('abc', '', 10)", "nil"],
  ["string.find('abc', '', 4)", "4|3"],
  ["string.match('key=value', '(%w+)=(%w+)')", "key|value"],
  ["string.match('  trim  ', '^%s*(.-)%s*$')", "trim"],
  ["string.match('hello', '()ll()')", "3|5"],
  ["string.match('f(a(b)c)d', '%b()')", "(a(b)c)"],
  ["string.match('2024-01-15', '(%d+)-(%d+)-(%d+)')", "2024|01|15"],
  ["string.match('abc', '^(a)(b)?')", "nil"],
  ["string.match('x = 10', '^(%a+)%s*=%s*(%d+)$')", "x|10"],
  ["string.match('[test]', '%[(.-)%]')", "test"],
  ["string.match('hello', '.-')", ""],
  ["string.match('hello', 'h(.*)o')", "ell"],
  ["string.match('aaa', 'a-b')", "nil"],
  ["string.match('aaab', 'a-b')", "aaab"],
  ["string.gsub('hello world', 'o', '0')", "hell0 w0rld|2"],
  ["string.gsub('abc', '%w', '%0%0')", "aabbcc|3"],
  ["string.gsub('hello', 'l', {l = 'L'})", "heLLo|2"],
  ["string.gsub('abc', 'b', function(x) return x:upper() end)", "aBc|1"],
  ["string.gsub('THE (quick) fox', '%f[%a]%a+', 'W')", "W (W) W|3"],
  ["string.gsub('hello world', '(%w+)', '<%1>')", "<hello> <world>|2"],
  ["string.gsub('abc', '', '-')", "-a-b-c-|4"],
  ["string.gsub('hello', 'l', 'L', 1)", "heLlo|1"],
  ["string.gsub('abc', '(a)(b)(c)', '%3%2%1')", "cba|1"],
  ["string.gsub('a,b,,c', ',', ';')", "a;b;;c|3"],
  ["string.gsub('x^2', '%^', '**')", "x**2|1"],
  ["string.gsub('one two', '(%w+) (%w+)', '%2 %1')", "two one|1"],
  ["string.gsub('abc', '.', {a = 1, b = true})", "ERR:invalid replacement value (a boolean)"],
  [
    "(function() local t = {} for w in string.gmatch('one two  three', '%a+') do t[#t+1] = w end return table.concat(t, ',') end)()",
    "one,two,three",
  ],
  [
    "(function() local t = {} for k, v in string.gmatch('a=1, b=2', '(%w+)=(%w+)') do t[#t+1] = k .. v end return table.concat(t, ',') end)()",
    "a1,b2",
  ],
  ["(function() local n = 0 for _ in string.gmatch('', '') do n = n + 1 end return n end)()", "1"],
  [
    "(function() local t = {} for p in string.gmatch('abc', '()') do t[#t+1] = p end return table.concat(t, ',') end)()",
    "1,2,3,4",
  ],
  ["pcall(string.rep)", "false|bad argument #1 to 'string.rep' (string expected, got no value)"],
  ["pcall(string.find, 'a', '[')", "false|malformed pattern (missing ']')"],
  ["pcall(string.gsub, 'a', '(', 'x')", "true|xax|2"],
  ["pcall(string.match, 'a', '%')", "false|malformed pattern (ends with '%')"],
  ["pcall(string.gsub, 'abc', 'b', '%2')", "false|invalid capture index %2"],
  [
    "pcall(string.format, '%d', 3.5)",
    "false|bad argument #2 to 'string.format' (number has no integer representation)",
  ],
  ["('x'):rep(3, ','), ('ab'):rep(0), string.byte('A'), string.char(72, 105)", "x,x,x||65|Hi"],
  [
    "string.sub('hello', -3), string.sub('hello', 2, 3), ('hello'):upper(), #'h\\u{e9}llo'",
    "llo|el|HELLO|6",
  ],
  ["string.byte('hello', 1, -1)", "104|101|108|108|111"],
  ["string.reverse('abc'), string.len('abc'), string.lower('ABC')", "cba|3|abc"],
  [
    "utf8.char(233, 8364) == '\\u{e9}\\u{20ac}', utf8.len('\\u{e9}a'), utf8.codepoint('\\u{e9}'), utf8.len('\\xff')",
    "true|2|233|nil|1",
  ],
  [
    "(function() local t = {} for p, c in utf8.codes('a\\u{e9}') do t[#t+1] = p .. ':' .. c end return table.concat(t, ',') end)()",
    "1:97,2:233",
  ],
  ["table.concat({1, 2, 3}, '-'), select('#', 1, nil, 3), select(2, 'a', 'b', 'c')", "1-2-3|3|b|c"],
  [
    "(function() local t = {5, 2, 8, 1} table.sort(t) return table.concat(t, ',') end)()",
    "1,2,5,8",
  ],
  [
    "(function() local t = {5, 2, 8, 1} table.sort(t, function(a, b) return a > b end) return table.concat(t, ',') end)()",
    "8,5,2,1",
  ],
  ["table.unpack({1, 2, 3})", "1|2|3"],
  [
    "(function() local t = {1, 2} table.insert(t, 3) table.insert(t, 1, 0) table.remove(t, 2) return table.concat(t, ',') end)()",
    "0,2,3",
  ],
  ["pcall(error, 'x')", "false|x"],
  ["pcall(error, {code = 1})", "false|table"],
  ["pcall(error)", "false|nil"],
  ["select(2, pcall(error, 'msg', 0))", "msg"],
  [
    "(function() local ok, e = pcall(function() local x = nil; return x.y end) return ok, (e:gsub('^.-:%d+: ', '')) end)()",
    "false|attempt to index a nil value (local 'x')",
  ],
  ["rawequal('a', 'a'), rawlen({1, 2}), rawget({a = 1}, 'a'), next({})", "true|2|1|nil"],
  [
    "(function() local mt = {__index = function(t, k) return k .. '!' end} local t = setmetatable({}, mt) return t.hi, getmetatable(t) == mt end)()",
    "hi!|true",
  ],
  [
    "(function() local mt = {__add = function(a, b) return 'added' end, __tostring = function() return 'T' end} local t = setmetatable({}, mt) return t + 1, tostring(t) end)()",
    "added|T",
  ],
  ["(function() local s = 0 for i = 10, 1, -3 do s = s + i end return s end)()", "22"],
  [
    "(function() for i = 1, 3 do if i == 2 then goto done end end ::done:: return 'goto' end)()",
    "goto",
  ],
  [
    "math.max(3, 7, 2), math.min(3, 7, 2), math.abs(-4), math.huge, -math.huge, math.pi",
    "7|2|4|inf|-inf|3.1415926535898",
  ],
  ["math.fmod(7, 3), math.fmod(-7, 3), math.sqrt(16), math.ult(1, -1)", "1|-1|4.0|true"],
  ["type(math.random()), math.random(5, 5)", "number|5"],
  [
    "string.format('%.3f', 2/3), string.format('%5.1s|', 'abc'), string.format('%c%c', 72, 105)",
    "0.667|    a||Hi",
  ],
  [
    "tostring(1/0), tostring(-1/0), tostring(0/0) == tostring(0/0), 0/0 ~= 0/0",
    "inf|-inf|true|true",
  ],
  ["'10' + 5, '3' * '4', 10 .. 20, '0x10' + 0", "15|12|1020|16"],
  ["1 == 1.0, '1' == 1, 2^0.5 > 1.41, 3 | 0", "true|false|true|3"],
  ["#{1, 2, 3, nil}, #{n = 1}", "3|0"],
  ["collectgarbage('count') > 0, type(collectgarbage('count'))", "true|number"],
  [
    "string.format('%q', 1/3) ~= nil, string.format('%q', 10), string.format('%q', math.mininteger)",
    "true|10|0x8000000000000000",
  ],
  ["('%d items'):format(3), ('abc'):find('c'), ('a b'):match('(%S+)$')", "3 items|3|b"],
  [
    "tostring(nil), tostring(false), tostring(123), tostring(1.5), tostring(100000000000000), tostring(1e100)",
    "nil|false|123|1.5|100000000000000|1e+100",
  ],
  ["string.format('%10.4f|%-10d|%+d', math.pi, 5, 5)", "    3.1416|5         |+5"],
  ["string.format('%e', 12345.678)", "1.234568e+04"],
];

/** Back-references (%1); to a position capture "()" stock Lua never matches (lstrlib.c). */
const BACKREF_CASES: Array<[string, string]> = [
  ["string.match('aXa', '(a)X%1')", "a"],
  ["string.gsub('hello hello', '(%w+) %1', '%1')", "hello|1"],
  ["string.find('abab', '(ab)%1')", "1|4|ab"],
  ["string.find('abc', '()%1')", "nil"],
  ["string.find('abc', 'b()%1')", "nil"],
  ["string.gsub('abc', 'b()%1', 'X')", "abc|0"],
  ["string.gsub('secret', '()%1', '')", "secret|0"],
  ["string.format('%a', 1) ~= nil", "true"],
];

function script(cases: Array<[string, string]>): string {
  return `local function ser(...)
  local n = select("#", ...)
  local t = {}
  for i = 1, n do
    local v = select(i, ...)
    t[#t + 1] = type(v) == "table" and "table" or tostring(v)
  end
  return table.concat(t, "|")
end

local CASES = {
${cases.map(([expr]) => `  function() return ${expr} end,`).join("\n")}
}

function on_enqueue(msg)
  local r = table.pack(pcall(CASES[tonumber(msg.headers.case)]))
  if not r[1] then
    return { fairness_key = "ERR:" .. tostring(r[2]):gsub('^%[string ".-"%]:%d+: ', '') }
  end
  return { fairness_key = ser(table.unpack(r, 2, r.n)) }
end`;
}

/** Evaluates every case in an on_enqueue hook (one message each); returns the differences. */
async function evaluate(cases: Array<[string, string]>, prefix: string): Promise<string[]> {
  const { client } = await sharedBroker();
  const q = await scriptedQueue(client, { on_enqueue_script: script(cases) }, prefix);
  const ids: string[] = [];
  for (let i = 0; i < cases.length; i++) {
    ids.push(await client.enqueue(q, { headers: { case: String(i + 1) } }));
  }
  const got = new Map(
    (await drain(client, q, cases.length, 5000)).map((m) => [m.id, m.metadata!.fairness_key]),
  );
  const norm = (s: string | undefined) =>
    s?.replace(/^(false\|bad argument #\d+ to )'[^']*'/, "$1'…'");
  return cases.flatMap(([expr, want], i) => {
    const actual = got.get(ids[i]);
    return norm(actual) === norm(want)
      ? []
      : [`${expr}\n    expected ${JSON.stringify(want)}\n    got      ${JSON.stringify(actual)}`];
  });
}

scenario("LUA-SEMANTICS Lua 5.4 operators and standard library match reference Lua", async () => {
  const diffs = await evaluate(CASES, "semantics");
  assert.deepEqual(
    diffs,
    [],
    `${diffs.length} of ${CASES.length} cases differ:\n${diffs.join("\n")}`,
  );
});

scenario("LUA-SEMANTICS pattern back-references match like reference Lua", async () => {
  const diffs = await evaluate(BACKREF_CASES, "backref");
  assert.deepEqual(
    diffs,
    [],
    `${diffs.length} of ${BACKREF_CASES.length} cases differ:\n${diffs.join("\n")}`,
  );
});
