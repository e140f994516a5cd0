"""The same reading and writing as normalizer.Reader and Writer, made once per
record shape into one Python function: the records of a chunk mostly have one
or a few shapes (the same keys, and the same keys in their `kubernetes` map),
and a function of straight moves costs a fraction of walking the table per
record. A shape is the record's keys and, for each key the source schema
reads inside, that map's keys. A value the function cannot take as its shape
expects (another type, a missing-value mark, one the target cannot hold)
makes it answer None: the record then takes the general way. Shapes whose
fields nest deeper than one map take the general way too."""
MAX_SHAPES = 256  # per normalizer and source schema; past it, new shapes take the general way


class Shapes:
    """Compiled readers-writers of one source schema into one target."""

    def __init__(self, reader, writer):
        self.reader, self.writer = reader, writer
        self.nodes = {}  # record keys -> the keys whose maps the schema reads inside
        self.made = {}  # shape -> function or None (the general way)

    def __call__(self, record, keys):
        """(out, concepts, rest) as Reader.read then Writer.write would make
        them (time from the record only), or None. keys: tuple(record)."""
        nodes = self.nodes.get(keys)
        if nodes is None:
            trie = self.reader.trie
            nodes = tuple(k for k in keys if type(trie.get(k)) is dict)
            if len(self.nodes) < 4 * MAX_SHAPES:
                self.nodes[keys] = nodes
        if len(nodes) == 1:  # most records: the kubernetes map
            value = record[nodes[0]]
            inner = (tuple(value) if type(value) is dict and value else None,)
            shape = (True, keys, inner)
        elif nodes:
            inner = tuple(tuple(v) if type(v) is dict and v else None for v in map(record.__getitem__, nodes))
            shape = (True, keys, inner)
        else:
            shape = (False, keys)  # tagged: no record's keys can pass for another shape
        function = self.made.get(shape, self)
        if function is self:
            function = self._make(keys, dict(zip(nodes, inner)) if nodes else {}, shape)
        return None if function is None else function(record)

    def _make(self, keys, inner, shape):
        function = None
        if len(self.made) < MAX_SHAPES:
            try:
                function = _compile(self.reader, self.writer, keys, inner)
            except _General:
                function = None
            self.made[shape] = function
        return function


class _General(Exception):
    """This shape takes the general way."""


class _Source:
    """What compiling one shape has found: the code, the names it binds."""

    def __init__(self, reader):
        self.reader = reader
        self.lines = []
        self.names = {}
        self.by_value = {}  # (type, value) -> name: one name per key, so paths share their maps
        self.concepts = {}  # concept -> (variable, source path)
        self.rest = []  # (path, expression) of what stays as it is

    def bind(self, value):
        if type(value) in (str, int) and type(value) is not bool:
            return repr(value)  # a constant in the code
        name = self.by_value.get((type(value), value))
        if name is None:
            name = self.by_value[(type(value), value)] = f"k{len(self.names)}"
            self.names[name] = value
        return name

    def leaf(self, concept, path, expression):
        """Code reading one field into a concept's canonical value, or giving up."""
        if concept in self.concepts:
            self.rest.append((path, expression))
            return
        variable = f"c{len(self.concepts)}"
        convert = self.reader.convert[concept]
        self.lines.append(f"{variable} = {expression}")
        dash = f" or {variable} == '-'" if "-" in self.reader.absent else ""
        if convert is None:  # text: a non-empty string (and not "-" from Fluent Bit's parsers)
            self.lines.append(f"if type({variable}) is not str or not {variable}{dash}: return None")
        else:
            self.lines.append(f"if {variable} is None or {variable} == ''{dash}: return None")
            self.lines.append(f"{variable} = {self.bind(convert)}({variable})")
            self.lines.append(f"if {variable} is None: return None")
        self.concepts[concept] = (variable, path)


def _walk(source, trie, keys, inner, prefix, expression_of):
    for key in keys:
        entry = trie.get(key)
        name = source.bind(key)
        expression = f"{expression_of}[{name}]"
        if entry is None:
            source.rest.append((prefix + (key,), expression))
        elif type(entry) is dict:
            if inner is None or inner.get(key) is None:
                source.rest.append((prefix + (key,), expression))
                continue
            variable = f"n{len(source.lines)}"
            source.lines.append(f"{variable} = {expression}")
            _walk(source, entry, inner[key], None, prefix + (key,), variable)
        else:
            source.leaf(entry, prefix + (key,), expression)
    if inner is None and any(type(trie.get(k)) is dict for k in keys):
        raise _General()  # deeper than one map


def _tree_literal(tree):
    return "{" + ", ".join(f"{key}: {_tree_literal(value) if type(value) is dict else value}"
                           for key, value in tree.items()) + "}"


def _insert(source, tree, path, expression):
    node = tree
    for key in path[:-1]:
        name = source.bind(key)
        node = node.setdefault(name, {})
        if type(node) is not dict:
            raise _General()
    node[source.bind(path[-1])] = expression


def _compile(reader, writer, keys, inner):
    source = _Source(reader)
    _walk(source, reader.trie, keys, inner, (), "record")
    out, rest = {}, {}
    for path, expression in source.rest:
        _insert(source, rest, path, expression)
    for concept, (variable, path) in source.concepts.items():
        step = writer.plan.get(concept)
        if step is None:  # the target has no field for it: back where it came from
            _insert(source, rest, path, variable if reader.convert[concept] is None else _raw(source, path))
            continue
        target, convert = step
        if convert is not None:
            source.lines.append(f"w{variable} = {source.bind(convert)}({variable})")
            source.lines.append(f"if w{variable} is None: return None")
            _insert(source, out, target, f"w{variable}")
        else:
            _insert(source, out, target, variable)
    concepts = "{" + ", ".join(f"{source.bind(c)}: {v}" for c, (v, _) in source.concepts.items()) + "}"
    body = "\n    ".join(source.lines + [f"return {_tree_literal(out)}, {concepts}, {_tree_literal(rest)}"])
    namespace = dict(source.names)
    exec(f"def shaped(record):\n    {body}\n", namespace)  # noqa: S102 (code made from the table, no data)
    return namespace["shaped"]


def _raw(source, path):
    return "record" + "".join(f"[{source.bind(key)}]" for key in path)
