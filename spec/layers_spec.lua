-- The layers of the C core and the CLI: no file calls back into a file that
-- calls it (the call graph from the built objects, scripts/callgraph.lua), no
-- include cycle.
local function run(args)
  local p = assert(io.popen("lua5.4 scripts/callgraph.lua " .. args .. " 2>&1"))
  local out = p:read("a")
  local ok = p:close()
  return ok, out
end

describe("the C core's files", function()
  it("call each other without a cycle, and include without one", function()
    local ok, out = run("build/obj")
    assert.is_true(ok, out)
    assert.matches("[1-9]%d* C files, %d+ files with includes, 0 cycles", out)
  end)

  it("are checked by a script that finds a cycle when there is one", function()
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -p " .. dir))
    local function write(name, text)
      local f = assert(io.open(dir .. "/" .. name, "w"))
      f:write(text)
      f:close()
    end
    write("a.c", "int b_fn(void);\nint a_fn(void) { return b_fn(); }\n")
    write("b.c", "int a_fn(void);\nint c_fn(void);\nint b_fn(void) { return a_fn() + c_fn(); }\n")
    write("c.c", "int c_fn(void) { return 1; }\n")
    for _, f in ipairs { "a", "b", "c" } do
      assert(os.execute(("cc -c -o %s/%s.o %s/%s.c"):format(dir, f, dir, f)))
    end
    local ok, out = run(dir .. " --edges")
    os.execute("rm -rf " .. dir)
    assert.is_not_true(ok, out)
    assert.matches("call cycle: a%.c <%-> b%.c\n", out)
    assert.matches("b%.c %-> c%.c %(c_fn%)", out)
    assert.not_matches("call cycle: [^\n]*c%.c", out)
  end)
end)
