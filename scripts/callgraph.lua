-- The graph between the C files: which file calls (or reads) what another
-- defines, from the built objects (nm), and which file includes which header
-- (#include "..."); every cycle in either; with --layers, every call from a
-- folder into a folder above it.
--   lua5.4 scripts/callgraph.lua [OBJDIR] [--edges] [--except PATTERN]
--                                [--layers "sql db ..." [--src DIR]]
-- OBJDIR: build/obj. --edges lists the call graph, one "a.c -> b.c (symbols)"
-- line per pair. --except leaves out the files whose name matches the Lua
-- pattern. --layers names the folders of DIR (src) lowest first: a file of one
-- may call only files of its own folder and those before it (the objects are
-- flat: a file's folder is where DIR/*/NAME.c is). Prints each cycle with its
-- edges, each call upward, and exits 1 when there is one.
local objdir, show_edges, except, layers, srcdir = "build/obj", false, nil, nil, "src"
local i = 1
while arg[i] do
  if arg[i] == "--edges" then show_edges = true
  elseif arg[i] == "--except" then i = i + 1; except = arg[i]
  elseif arg[i] == "--layers" then i = i + 1; layers = arg[i]
  elseif arg[i] == "--src" then i = i + 1; srcdir = arg[i]
  else objdir = arg[i] end
  i = i + 1
end
local function kept(file)
  return file ~= "embedded_lua.c"        -- generated: Lua text as C arrays
    and not (except and file:match(except))
end

local function lines(cmd)
  local p = assert(io.popen(cmd))
  local out = {}
  for line in p:lines() do out[#out + 1] = line end
  p:close()
  return out
end

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys)
  return keys
end

-- Tarjan's strongly connected components of edges (node -> { node -> any });
-- returns those of more than one node: the cycles.
local function cycles_of(nodes, edges)
  local index, low, onstack, stack, n, cycles = {}, {}, {}, {}, 0, {}
  local function visit(v)
    n = n + 1
    index[v], low[v] = n, n
    stack[#stack + 1], onstack[v] = v, true
    for _, w in ipairs(sorted_keys(edges[v] or {})) do
      if not index[w] then
        visit(w)
        low[v] = math.min(low[v], low[w])
      elseif onstack[w] then
        low[v] = math.min(low[v], index[w])
      end
    end
    if low[v] == index[v] then
      local comp = {}
      repeat
        local w = table.remove(stack)
        onstack[w] = nil
        comp[#comp + 1] = w
      until w == v
      if #comp > 1 then table.sort(comp); cycles[#cycles + 1] = comp end
    end
  end
  for _, v in ipairs(nodes) do if not index[v] then visit(v) end end
  return cycles
end

-- The calls: edges[a][b] = the symbols of b that a uses.
local defs, uses, files = {}, {}, {}
for _, path in ipairs(lines("ls " .. objdir .. "/*.o")) do
  local file = path:match("([^/]+)%.o$") .. ".c"
  if kept(file) then
    files[#files + 1] = file
    uses[file] = {}
    for _, line in ipairs(lines("nm " .. path)) do
      local kind, sym = line:match("^%x*%s+(%a)%s+(%S+)$")
      if kind == "U" then
        uses[file][sym] = true
      elseif kind and kind:match("[TDRB]") then
        defs[sym] = file
      end
    end
  end
end
table.sort(files)
local calls = {}
for _, a in ipairs(files) do
  calls[a] = {}
  for sym in pairs(uses[a]) do
    local b = defs[sym]
    if b and b ~= a then
      calls[a][b] = calls[a][b] or {}
      table.insert(calls[a][b], sym)
    end
  end
end
local function edge_line(a, b, syms)
  table.sort(syms)
  return ("%s -> %s (%s)"):format(a, b, table.concat(syms, ", "))
end
if show_edges then
  for _, a in ipairs(files) do
    for _, b in ipairs(sorted_keys(calls[a])) do print(edge_line(a, b, calls[a][b])) end
  end
end

-- The includes: every project file's #include "..." (headers in include/ and src/*/).
local includes, sources = {}, {}
for _, path in ipairs(lines("ls src/*/*.c src/*/*.h include/*.h 2>/dev/null")) do
  local name = path:match("[^/]+$")
  if kept(name) then
    sources[#sources + 1] = name
    includes[name] = {}
    for line in io.lines(path) do
      local h = line:match('^%s*#%s*include%s+"([^"]+)"')
      if h then includes[name][h:match("[^/]+$")] = { h } end
    end
  end
end
table.sort(sources)

local found = 0
for _, comp in ipairs(cycles_of(files, calls)) do
  found = found + 1
  print("call cycle: " .. table.concat(comp, " <-> "))
  for _, a in ipairs(comp) do
    for _, b in ipairs(comp) do
      if calls[a][b] then print("  " .. edge_line(a, b, calls[a][b])) end
    end
  end
end
for _, comp in ipairs(cycles_of(sources, includes)) do
  found = found + 1
  print("include cycle: " .. table.concat(comp, " <-> "))
end
local summary = ("%d C files, %d files with includes, %d cycles"):format(#files, #sources, found)

-- The layers: rank[folder] from their order; a call may not go to a higher rank.
if layers then
  local rank, folder, upward = {}, {}, 0
  for name in layers:gmatch("%S+") do rank[name] = #sorted_keys(rank) + 1 end
  for _, path in ipairs(lines("ls " .. srcdir .. "/*/*.c 2>/dev/null")) do
    local dir, file = path:match("([^/]+)/([^/]+)$")
    folder[file] = dir
  end
  for _, a in ipairs(files) do
    local fa = folder[a]
    if not (fa and rank[fa]) then
      upward = upward + 1
      print(("layer: %s is in no layer (%s)"):format(a, fa or "no folder"))
    else
      for _, b in ipairs(sorted_keys(calls[a])) do
        local fb = folder[b]
        if fb and rank[fb] and rank[fb] > rank[fa] then
          upward = upward + 1
          table.sort(calls[a][b])
          print(("layer: %s/%s calls up into %s/%s (%s)"):format(fa, a, fb, b,
            table.concat(calls[a][b], ", ")))
        end
      end
    end
  end
  found = found + upward
  summary = summary .. (", %d against the layers"):format(upward)
end
print(summary)
os.exit(found == 0 and 0 or 1)
