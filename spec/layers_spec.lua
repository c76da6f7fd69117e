-- The layers of the C core and the CLI: no file calls back into a file that
-- calls it (the call graph from the built objects, scripts/callgraph.lua), no
-- include cycle, and no file calls into a folder of src/ above its own (the
-- Makefile's LAYERS, lowest first).
local function run(args)
  local p = assert(io.popen("lua5.4 scripts/callgraph.lua " .. args .. " 2>&1"))
  local out = p:read("a")
  local ok = p:close()
  return ok, out
end

-- A fresh directory with the subdirectories named (paths relative to it).
local function scratch_dir(...)
  local dir = os.tmpname()
  os.remove(dir)
  for _, sub in ipairs { ".", ... } do assert(os.execute("mkdir -p " .. dir .. "/" .. sub)) end
  return dir
end

-- Writes the C source text to path and compiles it to obj.
local function compile(path, obj, text)
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
  assert(os.execute(("cc -c -o %s %s"):format(obj, path)))
end

local function makefile_layers()
  local f = assert(io.open("Makefile"))
  local layers = assert(f:read("a"):match("\nLAYERS%s*=%s*([^\n]+)"), "no LAYERS in the Makefile")
  f:close()
  return layers
end

describe("the C core's files", function()
  it("call each other without a cycle, and include without one", function()
    local ok, out = run("build/obj")
    assert.is_true(ok, out)
    assert.matches("[1-9]%d* C files, %d+ files with includes, 0 cycles", out)
  end)

  it("are checked by a script that finds a cycle when there is one", function()
    local dir = scratch_dir()
    local function build(name, text) compile(dir .. "/" .. name .. ".c", dir .. "/" .. name .. ".o", text) end
    build("a", "int b_fn(void);\nint a_fn(void) { return b_fn(); }\n")
    build("b", "int a_fn(void);\nint c_fn(void);\nint b_fn(void) { return a_fn() + c_fn(); }\n")
    build("c", "int c_fn(void) { return 1; }\n")
    local ok, out = run(dir .. " --edges")
    os.execute("rm -rf " .. dir)
    assert.is_not_true(ok, out)
    assert.matches("call cycle: a%.c <%-> b%.c\n", out)
    assert.matches("b%.c %-> c%.c %(c_fn%)", out)
    assert.not_matches("call cycle: [^\n]*c%.c", out)
  end)

  it("call only into their own folder of src/ and the folders below it", function()
    local layers = makefile_layers()
    assert.matches("^sql db ", layers)
    local ok, out = run("build/obj --layers '" .. layers .. "'")
    assert.is_true(ok, out)
    assert.matches("[1-9]%d* C files, .*, 0 cycles, 0 against the layers", out)
  end)

  it("are checked by a script that finds a call up a layer when there is one", function()
    local dir = scratch_dir("src/low", "src/high", "obj")
    local function build(path, text)
      compile(dir .. "/src/" .. path, dir .. "/obj/" .. path:match("([^/]+)%.c$") .. ".o", text)
    end
    build("low/a.c", "int a_fn(void) { return 1; }\n")
    build("low/b.c", "int a_fn(void);\nint c_fn(void);\nint b_fn(void) { return a_fn() + c_fn(); }\n")
    build("high/c.c", "int c_fn(void) { return 2; }\n")
    build("high/d.c", "int a_fn(void);\nint d_fn(void) { return a_fn(); }\n")
    local ok, out = run(("%s/obj --src %s/src --layers 'low high'"):format(dir, dir))
    local swapped_ok, swapped = run(("%s/obj --src %s/src --layers 'high low'"):format(dir, dir))
    os.execute("rm -rf " .. dir)
    assert.is_not_true(ok, out)
    assert.matches("layer: low/b%.c calls up into high/c%.c %(c_fn%)\n", out)
    assert.not_matches("layer: [^\n]*d%.c", out)
    assert.matches(", 1 against the layers", out)
    assert.is_not_true(swapped_ok, swapped)
    assert.matches("layer: high/d%.c calls up into low/a%.c %(a_fn%)\n", swapped)
    assert.matches(", 1 against the layers", swapped)
  end)
end)
