"""Plain data: the only form in which values cross between a program and its tests.

Standalone on purpose (the fork server and its children import it by path).

A tagged binary format mdrl owns: no pickle, no marshal, nothing `eval`ed. The encoder accepts
exact built-in types only (None, bool, int, float, complex, str, bytes, list, tuple, dict, set,
frozenset, and the built-in classes themselves), collections' Counter, OrderedDict, defaultdict
and deque (rebuilt as the receiver's own), plus linked lists and binary trees (objects of a class named `ListNode` with
`val`/`next`, or `TreeNode` with `val`/`left`/`right`, as LeetCode's prelude defines them), which
travel as structures and are rebuilt from the receiver's own classes. Anything else, a subclass
of a built-in included, is refused with the type's name. The decoder checks every length, depth
and type, so bytes written by a hostile program become plain values or a `MalformedData` error,
never an object whose behaviour the program chose.
"""

from __future__ import annotations

import builtins
import collections
import struct

MAX_DEPTH = 100
MAX_ITEMS = 10_000_000  # elements of all containers in one value
MAX_INT_BYTES = 1 << 20

_U32 = struct.Struct("<I")
_I32 = struct.Struct("<i")
_F64 = struct.Struct("<d")
_C128 = struct.Struct("<dd")

NONE, TRUE, FALSE = b"N", b"T", b"F"
INT, FLOAT, COMPLEX, STR, BYTES = b"i", b"f", b"c", b"s", b"b"
LIST, TUPLE, DICT, SET, FROZENSET = b"l", b"t", b"d", b"S", b"Z"
LINKED, TREE, HANDLE = b"n", b"r", b"h"
COUNTER, ORDERED, DEQUE, TYPE = b"C", b"O", b"q", b"y"

#: Standard-library containers that travel as their contents and are rebuilt as the receiver's own
#: (exact types only: a subclass is not plain). defaultdict arrives as a dict.
_Counter, _OrderedDict, _defaultdict, _deque = (collections.Counter, collections.OrderedDict,
                                                collections.defaultdict, collections.deque)
#: Built-in classes that may be passed as values (`isinstance(x, int)`-style tests), by name.
BUILTIN_TYPES = {name: getattr(builtins, name) for name in (
    "bool", "bytes", "complex", "dict", "float", "frozenset", "int", "list", "object", "set", "str", "tuple",
    "type", "bytearray", "range", "slice")}
_TYPE_NAMES = {id(cls): name for name, cls in BUILTIN_TYPES.items()}

_type = type
_len = len
_id = id


class NotPlain(Exception):
    """A value that may not cross: its type is not plain data, or it is too deep or too large."""


class MalformedData(Exception):
    """Bytes that are not a well-formed encoding."""


class LinkedList:
    """A stand-in ListNode for receivers without LeetCode's prelude."""

    def __init__(self, val=0, next=None):
        self.val = val
        self.next = next

    def __repr__(self) -> str:
        return f"ListNode({self.val!r})"


class BinaryTree:
    """A stand-in TreeNode for receivers without LeetCode's prelude."""

    def __init__(self, val=0, left=None, right=None):
        self.val = val
        self.left = left
        self.right = right

    def __repr__(self) -> str:
        return f"TreeNode({self.val!r})"


def _fields(obj) -> dict | None:
    try:
        fields = object.__getattribute__(obj, "__dict__")
    except AttributeError:
        return None
    return fields if _type(fields) is dict else None


def _node_kind(obj) -> bytes | None:
    name = _type(obj).__name__
    if name == "ListNode":
        fields = _fields(obj)
        if fields is not None and "val" in fields and "next" in fields:
            return LINKED
    elif name == "TreeNode":
        fields = _fields(obj)
        if fields is not None and "val" in fields and "left" in fields and "right" in fields:
            return TREE
    return None


class Encoder:
    """Encodes one value; `handle_of(obj)` gives the handle number of an object that stays on the
    program's side (or None)."""

    def __init__(self, handle_of=None) -> None:
        self.out = bytearray()
        self.items = 0
        self.handle_of = handle_of

    def encode(self, value) -> bytes:
        self._value(value, 0)
        return bytes(self.out)

    def _count(self, n: int) -> None:
        self.items += n
        if self.items > MAX_ITEMS:
            raise NotPlain(f"more than {MAX_ITEMS} items")

    def _value(self, v, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise NotPlain(f"nested deeper than {MAX_DEPTH}")
        out = self.out
        t = _type(v)
        if v is None:
            out += NONE
        elif v is True:
            out += TRUE
        elif v is False:
            out += FALSE
        elif t is int:
            size = (v.bit_length() + 8) // 8
            if size > MAX_INT_BYTES:
                raise NotPlain("integer too large")
            out += INT + _U32.pack(size) + v.to_bytes(size, "little", signed=True)
        elif t is float:
            out += FLOAT + _F64.pack(v)
        elif t is str:
            data = v.encode("utf-8", "surrogatepass")
            out += STR + _U32.pack(_len(data)) + data
        elif t is list or t is tuple or t is set or t is frozenset or t is _deque:
            tag = (LIST if t is list else TUPLE if t is tuple else SET if t is set
                   else FROZENSET if t is frozenset else DEQUE)
            items = v if t is list or t is tuple else list(v)
            self._count(_len(items))
            out += tag + _U32.pack(_len(items))
            for item in items:
                self._value(item, depth + 1)
        elif t is dict or t is _Counter or t is _OrderedDict or t is _defaultdict:
            pairs = list(dict.items(v))
            self._count(_len(pairs))
            out += (COUNTER if t is _Counter else ORDERED if t is _OrderedDict else DICT) + _U32.pack(_len(pairs))
            for key, item in pairs:
                self._value(key, depth + 1)
                self._value(item, depth + 1)
        elif t is bytes:
            out += BYTES + _U32.pack(_len(v)) + v
        elif t is complex:
            out += COMPLEX + _C128.pack(v.real, v.imag)
        elif t is type and _id(v) in _TYPE_NAMES:
            name = _TYPE_NAMES[_id(v)].encode()
            out += TYPE + _U32.pack(_len(name)) + name
        else:
            kind = _node_kind(v)
            if kind is LINKED:
                self._linked(v, depth)
            elif kind is TREE:
                self._tree(v, depth)
            else:
                number = self.handle_of(v) if self.handle_of is not None else None
                if number is None:
                    raise NotPlain(_describe_type(v))
                out += HANDLE + _U32.pack(number)

    def _linked(self, head, depth: int) -> None:
        values, seen, node = [], set(), head
        while node is not None:
            if _id(node) in seen:
                raise NotPlain("ListNode with a cycle")
            if _node_kind(node) is not LINKED:
                raise NotPlain(f"ListNode.next is {_describe_type(node)}")
            seen.add(_id(node))
            fields = _fields(node)
            values.append(fields["val"])
            node = fields["next"]
            self._count(1)
        self.out += LINKED + _U32.pack(_len(values))
        for value in values:
            self._value(value, depth + 1)

    def _tree(self, root, depth: int) -> None:
        # Breadth-first, each node as (val, left index, right index); -1 is no child.
        order, index, links = [root], {_id(root): 0}, []
        pos = 0
        while pos < _len(order):
            fields = _fields(order[pos])
            pair = []
            for side in ("left", "right"):
                child = fields[side]
                if child is None:
                    pair.append(-1)
                    continue
                if _node_kind(child) is not TREE:
                    raise NotPlain(f"TreeNode.{side} is {_describe_type(child)}")
                if _id(child) in index:
                    raise NotPlain("TreeNode shared or with a cycle")
                index[_id(child)] = _len(order)
                pair.append(_len(order))
                order.append(child)
                self._count(1)
            links.append(pair)
            pos += 1
        self.out += TREE + _U32.pack(_len(order))
        for node, (left, right) in zip(order, links):
            self._value(_fields(node)["val"], depth + 1)
            self.out += _I32.pack(left) + _I32.pack(right)


def _describe_type(v) -> str:
    try:
        name = _type(v).__name__
    except Exception:  # noqa: BLE001 - a hostile metaclass
        name = "?"
    return name if _type(name) is str else "?"


def encode(value, handle_of=None) -> bytes:
    """Bytes for a plain value; raises `NotPlain` naming the first type that is not plain data."""
    return Encoder(handle_of).encode(value)


class Decoder:
    """Decodes bytes into fresh built-in values, building nodes from the given classes."""

    def __init__(self, data: bytes, list_node=LinkedList, tree_node=BinaryTree, handle=None) -> None:
        self.data = memoryview(data)
        self.pos = 0
        self.items = 0
        self.list_node = list_node
        self.tree_node = tree_node
        self.handle = handle  # None: handles are refused

    def decode(self):
        value = self._value(0)
        if self.pos != _len(self.data):
            raise MalformedData("trailing bytes")
        return value

    def _take(self, n: int) -> memoryview:
        end = self.pos + n
        if n < 0 or end > _len(self.data):
            raise MalformedData("truncated")
        chunk = self.data[self.pos:end]
        self.pos = end
        return chunk

    def _u32(self) -> int:
        return _U32.unpack(self._take(4))[0]

    def _count(self, n: int) -> int:
        self.items += n
        if self.items > MAX_ITEMS or n > _len(self.data):
            raise MalformedData("too many items")
        return n

    def _value(self, depth: int):
        if depth > MAX_DEPTH:
            raise MalformedData("too deep")
        tag = bytes(self._take(1))
        if tag == NONE:
            return None
        if tag == TRUE:
            return True
        if tag == FALSE:
            return False
        if tag == INT:
            size = self._u32()
            if size > MAX_INT_BYTES:
                raise MalformedData("integer too large")
            return int.from_bytes(self._take(size), "little", signed=True)
        if tag == FLOAT:
            return _F64.unpack(self._take(8))[0]
        if tag == COMPLEX:
            real, imag = _C128.unpack(self._take(16))
            return complex(real, imag)
        if tag == STR:
            try:
                return str(self._take(self._u32()), "utf-8", "surrogatepass")
            except UnicodeDecodeError:
                raise MalformedData("bad utf-8") from None
        if tag == BYTES:
            return bytes(self._take(self._u32()))
        if tag in (LIST, TUPLE, SET, FROZENSET, DEQUE):
            n = self._count(self._u32())
            items = [self._value(depth + 1) for _ in range(n)]
            if tag == LIST:
                return items
            if tag == TUPLE:
                return tuple(items)
            if tag == DEQUE:
                return _deque(items)
            try:
                return set(items) if tag == SET else frozenset(items)
            except TypeError:
                raise MalformedData("unhashable set item") from None
        if tag in (DICT, COUNTER, ORDERED):
            n = self._count(self._u32())
            out = {} if tag == DICT else _Counter() if tag == COUNTER else _OrderedDict()
            for _ in range(n):
                key = self._value(depth + 1)
                try:
                    out[key] = self._value(depth + 1)
                except TypeError:
                    raise MalformedData("unhashable dict key") from None
            return out
        if tag == LINKED:
            n = self._count(self._u32())
            values = [self._value(depth + 1) for _ in range(n)]
            head = None
            for value in reversed(values):
                head = self.list_node(value, head)
            return head
        if tag == TREE:
            n = self._count(self._u32())
            nodes, links = [], []
            for _ in range(n):
                nodes.append(self.tree_node(self._value(depth + 1)))
                links.append((_I32.unpack(self._take(4))[0], _I32.unpack(self._take(4))[0]))
            used = set()
            for i, (left, right) in enumerate(links):
                for side, child in (("left", left), ("right", right)):
                    if child == -1:
                        continue
                    if not i < child < n or child in used:  # children come later, once each
                        raise MalformedData("bad tree link")
                    used.add(child)
                    setattr(nodes[i], side, nodes[child])
            return nodes[0] if nodes else None
        if tag == TYPE:
            cls = BUILTIN_TYPES.get(str(self._take(self._u32()), "ascii", "replace"))
            if cls is None:
                raise MalformedData("unknown type name")
            return cls
        if tag == HANDLE:
            number = self._u32()
            if self.handle is None:
                raise MalformedData("a handle where plain data was expected")
            return self.handle(number)
        raise MalformedData(f"unknown tag {tag!r}")


def decode(data: bytes, list_node=LinkedList, tree_node=BinaryTree, handle=None):
    """The plain value `data` encodes; raises `MalformedData` for anything else."""
    return Decoder(data, list_node, tree_node, handle).decode()
