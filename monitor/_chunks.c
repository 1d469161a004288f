/* A text's whitespace-separated chunks, each read once for its search stems and its trend
 * terms: the C half of monitor/chunks.py, which holds the same reading in Python and is the
 * reference (tests/test_chunks.py holds the two to one answer).
 *
 * Why C: a post's text is about 200 chunks, and in Python each costs a new string object
 * (str.split), its hash and two dictionary lookups; that was 51 of the ~200 µs a post costs a
 * parse worker of a cold pass (issue 15). Here a chunk is hashed where it lies in the text and
 * looked up in a table of the chunks met before; a string is made only for a chunk never met,
 * whose stems and terms the Python functions given to the reader compute.
 *
 * Chunks are cut exactly where str.split() cuts (Py_UNICODE_ISSPACE, the test it uses), and
 * compared by code point, so a chunk reads the same whatever the width of the text it is in.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

typedef struct {
    Py_hash_t hash;    /* 0: an empty slot (hashes are made non-zero) */
    PyObject *key;     /* the chunk, a str */
    PyObject *stems;   /* str: its stems joined by spaces, "" when it has none */
    PyObject *terms;   /* tuple of str */
} Entry;

typedef struct {
    PyObject_HEAD
    PyObject *stem;       /* chunk -> str */
    PyObject *terms_of;   /* chunk -> tuple of str */
    Py_ssize_t limit;     /* chunks remembered before all are forgotten */
    Py_ssize_t used;
    Py_ssize_t mask;      /* capacity - 1; capacity is a power of two */
    Entry *table;
} ChunkReader;

#define FIRST_CAPACITY 1024

/* A table slot's hash from FNV-1a's state: its high bits folded into the low ones the mask
 * keeps, and never 0, which marks an empty slot. */
static Py_hash_t
finish_hash(Py_uhash_t h)
{
    h ^= h >> 32;
    return h == 0 ? 1 : (Py_hash_t)h;
}

static int
same_chunk(PyObject *key, int kind, const void *data, Py_ssize_t start, Py_ssize_t length)
{
    if (PyUnicode_GET_LENGTH(key) != length)
        return 0;
    int key_kind = PyUnicode_KIND(key);
    const void *key_data = PyUnicode_DATA(key);
    if (key_kind == kind)
        return memcmp(key_data, (const char *)data + start * kind, (size_t)(length * kind)) == 0;
    for (Py_ssize_t i = 0; i < length; i++) {
        if (PyUnicode_READ(key_kind, key_data, i) != PyUnicode_READ(kind, data, start + i))
            return 0;
    }
    return 1;
}

static void
clear_table(ChunkReader *self)
{
    Entry *table = self->table;
    Py_ssize_t capacity = self->mask + 1;
    self->table = NULL;
    self->used = 0;
    self->mask = 0;
    if (table == NULL)
        return;
    for (Py_ssize_t i = 0; i < capacity; i++) {
        if (table[i].hash != 0) {
            Py_DECREF(table[i].key);
            Py_DECREF(table[i].stems);
            Py_DECREF(table[i].terms);
        }
    }
    PyMem_Free(table);
}

static int
resize(ChunkReader *self, Py_ssize_t capacity)
{
    Entry *table = PyMem_Calloc((size_t)capacity, sizeof(Entry));
    if (table == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    Entry *old = self->table;
    Py_ssize_t old_capacity = old == NULL ? 0 : self->mask + 1;
    for (Py_ssize_t i = 0; i < old_capacity; i++) {
        if (old[i].hash == 0)
            continue;
        Py_ssize_t slot = (Py_ssize_t)((Py_uhash_t)old[i].hash & (Py_uhash_t)(capacity - 1));
        while (table[slot].hash != 0)
            slot = (slot + 1) & (capacity - 1);
        table[slot] = old[i];
    }
    PyMem_Free(old);
    self->table = table;
    self->mask = capacity - 1;
    return 0;
}

/* The entry of a chunk met before, or NULL. */
static Entry *
find(ChunkReader *self, Py_hash_t hash, int kind, const void *data, Py_ssize_t start,
     Py_ssize_t length)
{
    if (self->table == NULL)
        return NULL;
    Py_ssize_t slot = (Py_ssize_t)((Py_uhash_t)hash & (Py_uhash_t)self->mask);
    for (;;) {
        Entry *entry = &self->table[slot];
        if (entry->hash == 0)
            return NULL;
        if (entry->hash == hash && same_chunk(entry->key, kind, data, start, length))
            return entry;
        slot = (slot + 1) & self->mask;
    }
}

/* Read a chunk never met: its stems and terms from the Python functions, remembered. On
 * success, *stems and *terms are new references. */
static int
learn(ChunkReader *self, PyObject *text, Py_hash_t hash, Py_ssize_t start, Py_ssize_t end,
      PyObject **stems, PyObject **terms)
{
    PyObject *key = PyUnicode_Substring(text, start, end);
    if (key == NULL)
        return -1;
    *stems = PyObject_CallOneArg(self->stem, key);
    if (*stems == NULL)
        goto fail;
    if (!PyUnicode_Check(*stems)) {
        PyErr_SetString(PyExc_TypeError, "a chunk's stems must be a str");
        goto fail_stems;
    }
    *terms = PyObject_CallOneArg(self->terms_of, key);
    if (*terms == NULL)
        goto fail_stems;
    if (!PyTuple_CheckExact(*terms)) {
        PyErr_SetString(PyExc_TypeError, "a chunk's terms must be a tuple");
        goto fail_terms;
    }
    for (Py_ssize_t k = 0; k < PyTuple_GET_SIZE(*terms); k++) {
        PyObject *term = PyTuple_GET_ITEM(*terms, k);
        if (!PyUnicode_Check(term)) {
            PyErr_SetString(PyExc_TypeError, "a chunk's terms must be str");
            goto fail_terms;
        }
    }
    /* The Python functions may have run anything: the table is looked at only now. Past the
     * limit everything is forgotten at once, as monitor.memo.Memo does. */
    if (self->used >= self->limit)
        clear_table(self);
    if (self->table == NULL || (self->used + 1) * 2 > self->mask + 1) {
        Py_ssize_t capacity = self->table == NULL ? FIRST_CAPACITY : (self->mask + 1) * 2;
        if (resize(self, capacity) < 0)
            goto fail_terms;
    }
    Py_ssize_t slot = (Py_ssize_t)((Py_uhash_t)hash & (Py_uhash_t)self->mask);
    while (self->table[slot].hash != 0)
        slot = (slot + 1) & self->mask;
    Entry *entry = &self->table[slot];
    entry->hash = hash;
    entry->key = key; /* the table takes this reference */
    entry->stems = Py_NewRef(*stems);
    entry->terms = Py_NewRef(*terms);
    self->used++;
    return 0;
fail_terms:
    Py_CLEAR(*terms);
fail_stems:
    Py_CLEAR(*stems);
fail:
    Py_DECREF(key);
    return -1;
}

static int
take(PyObject *pieces, PyObject *found, PyObject *stems, PyObject *terms)
{
    if (PyUnicode_GET_LENGTH(stems) > 0 && PyList_Append(pieces, stems) < 0)
        return -1;
    for (Py_ssize_t k = 0; k < PyTuple_GET_SIZE(terms); k++) {
        if (PySet_Add(found, PyTuple_GET_ITEM(terms, k)) < 0)
            return -1;
    }
    return 0;
}

PyDoc_STRVAR(read_doc,
"read(text, found) -> str\n\n"
"The stems of the text's chunks (cut as str.split() cuts), joined by spaces, leaving out\n"
"chunks without any; adds each chunk's terms to the set `found`.");

static PyObject *
ChunkReader_read(ChunkReader *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyUnicode_Check(args[0]) || !PySet_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "read(text: str, found: set)");
        return NULL;
    }
    if (self->stem == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "ChunkReader was not initialised");
        return NULL;
    }
    PyObject *text = args[0], *found = args[1];
    Py_ssize_t length = PyUnicode_GET_LENGTH(text);
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    PyObject *pieces = PyList_New(0);
    if (pieces == NULL)
        return NULL;
    Py_ssize_t i = 0;
    for (;;) {
        while (i < length && Py_UNICODE_ISSPACE(PyUnicode_READ(kind, data, i)))
            i++;
        if (i >= length)
            break;
        Py_ssize_t start = i;
        Py_uhash_t h = 14695981039346656037ULL; /* FNV-1a over the code points */
        Py_UCS4 ch;
        while (i < length && !Py_UNICODE_ISSPACE(ch = PyUnicode_READ(kind, data, i))) {
            h = (h ^ ch) * 1099511628211ULL;
            i++;
        }
        Py_hash_t hash = finish_hash(h);
        Entry *entry = find(self, hash, kind, data, start, i - start);
        int failed;
        if (entry != NULL) {
            failed = take(pieces, found, entry->stems, entry->terms);
        }
        else {
            PyObject *stems, *terms;
            if (learn(self, text, hash, start, i, &stems, &terms) < 0)
                goto fail;
            failed = take(pieces, found, stems, terms);
            Py_DECREF(stems);
            Py_DECREF(terms);
        }
        if (failed)
            goto fail;
    }
    PyObject *space = PyUnicode_FromOrdinal(' ');
    if (space == NULL)
        goto fail;
    PyObject *joined = PyUnicode_Join(space, pieces);
    Py_DECREF(space);
    Py_DECREF(pieces);
    return joined;
fail:
    Py_DECREF(pieces);
    return NULL;
}

static PyObject *
ChunkReader_remembered(ChunkReader *self, PyObject *Py_UNUSED(ignored))
{
    return PyLong_FromSsize_t(self->used);
}

static PyObject *
ChunkReader_clear(ChunkReader *self, PyObject *Py_UNUSED(ignored))
{
    clear_table(self);
    Py_RETURN_NONE;
}

static int
ChunkReader_init(ChunkReader *self, PyObject *args, PyObject *kwargs)
{
    static char *names[] = {"stem", "terms_of", "limit", NULL};
    PyObject *stem, *terms_of;
    Py_ssize_t limit;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOn", names, &stem, &terms_of, &limit))
        return -1;
    if (!PyCallable_Check(stem) || !PyCallable_Check(terms_of) || limit < 1) {
        PyErr_SetString(PyExc_ValueError, "ChunkReader(stem, terms_of, limit >= 1)");
        return -1;
    }
    clear_table(self);
    Py_XSETREF(self->stem, Py_NewRef(stem));
    Py_XSETREF(self->terms_of, Py_NewRef(terms_of));
    self->limit = limit;
    return 0;
}

static int
ChunkReader_traverse(ChunkReader *self, visitproc visit, void *arg)
{
    Py_VISIT(self->stem);
    Py_VISIT(self->terms_of);
    return 0;
}

static int
ChunkReader_tp_clear(ChunkReader *self)
{
    Py_CLEAR(self->stem);
    Py_CLEAR(self->terms_of);
    clear_table(self);
    return 0;
}

static void
ChunkReader_dealloc(ChunkReader *self)
{
    PyObject_GC_UnTrack(self);
    ChunkReader_tp_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef ChunkReader_methods[] = {
    {"read", (PyCFunction)(void (*)(void))ChunkReader_read, METH_FASTCALL, read_doc},
    {"remembered", (PyCFunction)ChunkReader_remembered, METH_NOARGS,
     "How many chunks the reader remembers."},
    {"clear", (PyCFunction)ChunkReader_clear, METH_NOARGS, "Forget every chunk."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject ChunkReaderType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "monitor._chunks.ChunkReader",
    .tp_doc = PyDoc_STR("ChunkReader(stem, terms_of, limit): reads texts' chunks, remembering"
                        " each chunk's stems and terms (at most `limit` chunks)."),
    .tp_basicsize = sizeof(ChunkReader),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)ChunkReader_init,
    .tp_dealloc = (destructor)ChunkReader_dealloc,
    .tp_traverse = (traverseproc)ChunkReader_traverse,
    .tp_clear = (inquiry)ChunkReader_tp_clear,
    .tp_methods = ChunkReader_methods,
};

static struct PyModuleDef chunks_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "monitor._chunks",
    .m_doc = PyDoc_STR("The C half of monitor.chunks."),
    .m_size = -1,
};

PyMODINIT_FUNC
PyInit__chunks(void)
{
    if (PyType_Ready(&ChunkReaderType) < 0)
        return NULL;
    PyObject *module = PyModule_Create(&chunks_module);
    if (module == NULL)
        return NULL;
    if (PyModule_AddObjectRef(module, "ChunkReader", (PyObject *)&ChunkReaderType) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
