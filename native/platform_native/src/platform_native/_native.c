/*
 * What the platform does for every record of a batch where Python's cost per record was most of a run.
 *
 * `int64_buffer` and `binary_buffers`: the buffers of an Arrow column of Python integers or byte
 * strings, in one pass (Python's `array("q", ...)` and a join with running lengths took 1.3 ms and
 * 7 ms per 25k values, a tenth of a landing run over several columns).
 *
 * `offset_spans`: the first and last offset of each topic partition in a batch (Arrow compute took a
 * filter and a min_max per partition, 0.9 ms of each 25k-record batch).
 *
 * `message_columns`: a batch of confluent-kafka messages as columns, read from each message's own
 * fields in one pass (a `map` of every accessor method over the batch, and a check of each message's
 * error, were a fifth of a landing run).
 *
 * `event_hours`: the event hour of each JSON payload of a landing batch, read in one pass of C per payload.
 *
 * Landing files every record under the hour of its event time and `raw` later finds the same hour by
 * decoding the record with orjson and Python's `datetime.fromisoformat`. This scan must therefore
 * never disagree with them: it accepts only payloads it can read exactly as they do (a strictly valid
 * JSON object of ASCII or strict UTF-8, numbers that are clearly finite, the event time as a plain ISO
 * 8601 date-time or as epoch milliseconds) and answers FALLBACK for everything else, which the
 * platform then reads one record at a time in Python. A property test compares the two on payloads
 * made to hit every branch here.
 *
 * For each payload: NOT_READ (an object without a usable event time: the field is missing, null, a
 * float, a boolean, an object or an array, or epoch milliseconds outside years 1 to 9999; or no payload,
 * or one longer than `max_bytes`), MOMENT (with the UTC hour of the event time, in epoch microseconds),
 * or FALLBACK.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

enum { NOT_READ = 0, MOMENT = 1, FALLBACK = 2 };

/* Nesting deeper than this is left to orjson, whose own limit is higher. */
#define MAX_DEPTH 128
/* Numbers whose decimal magnitude passes this are left to orjson, which refuses what overflows a double. */
#define MAX_MAGNITUDE 300
/* Epoch milliseconds that Python's datetime can hold (years 1 to 9999), as `decode._EPOCH_MS`. */
#define EPOCH_MS_MIN (-62135596800000LL)
#define EPOCH_MS_MAX (253402300799999LL)
#define MS_PER_HOUR 3600000LL

typedef struct {
    const unsigned char *p;
    const unsigned char *end;
} Cursor;

typedef struct {
    int kind;      /* NOT_READ, MOMENT or FALLBACK */
    int64_t hour;  /* epoch microseconds of the hour, for MOMENT */
} Outcome;

static int is_digit(unsigned char b) { return b >= '0' && b <= '9'; }

static void skip_whitespace(Cursor *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

static int hex_value(unsigned char b)
{
    if (is_digit(b))
        return b - '0';
    if (b >= 'a' && b <= 'f')
        return b - 'a' + 10;
    if (b >= 'A' && b <= 'F')
        return b - 'A' + 10;
    return -1;
}

/* The code unit of a `\\uXXXX` escape at `p`, or -1. */
static int unicode_escape(const unsigned char *p, const unsigned char *end)
{
    if (end - p < 6 || p[0] != '\\' || p[1] != 'u')
        return -1;
    int code = 0;
    for (int i = 2; i < 6; i++) {
        int digit = hex_value(p[i]);
        if (digit < 0)
            return -1;
        code = code * 16 + digit;
    }
    return code;
}

/* The bytes a string holds as they are, one loop test each: printable ASCII but the quote and the
 * backslash (filled in by the module's init). */
static unsigned char plain_byte[256];

/* A string from its opening quote. Sets its content and whether it has no escape. Plain ASCII is
 * skipped by a table: most of a payload's bytes are names and string values. */
static int scan_string(Cursor *c, const unsigned char **content, Py_ssize_t *length, int *plain)
{
    const unsigned char *start = ++c->p;
    *plain = 1;
    for (;;) {
        while (c->p < c->end && plain_byte[*c->p])
            c->p++;
        if (c->p >= c->end)
            return 0; /* no closing quote */
        unsigned char b = *c->p;
        if (b == '"') {
            *content = start;
            *length = c->p - start;
            c->p++;
            return 1;
        }
        if (b < 0x20)
            return 0;
        if (b == '\\') {
            *plain = 0;
            if (c->end - c->p < 2)
                return 0;
            unsigned char escaped = c->p[1];
            if (escaped == 'u') {
                int code = unicode_escape(c->p, c->end);
                if (code < 0 || (code >= 0xDC00 && code <= 0xDFFF))
                    return 0; /* a low surrogate alone: orjson refuses it */
                c->p += 6;
                if (code >= 0xD800 && code <= 0xDBFF) { /* a high surrogate: only with its low one */
                    int low = unicode_escape(c->p, c->end);
                    if (low < 0xDC00 || low > 0xDFFF)
                        return 0;
                    c->p += 6;
                }
            } else if (escaped != 0 && strchr("\"\\/bfnrt", escaped) != NULL) {
                c->p += 2;
            } else {
                return 0;
            }
            continue;
        }
        /* Strict UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF. */
        int continuation;
        uint32_t code;
        if (b >= 0xC2 && b <= 0xDF) {
            continuation = 1;
            code = b & 0x1F;
        } else if (b >= 0xE0 && b <= 0xEF) {
            continuation = 2;
            code = b & 0x0F;
        } else if (b >= 0xF0 && b <= 0xF4) {
            continuation = 3;
            code = b & 0x07;
        } else {
            return 0;
        }
        if (c->end - c->p <= continuation)
            return 0;
        for (int i = 1; i <= continuation; i++) {
            unsigned char next = c->p[i];
            if ((next & 0xC0) != 0x80)
                return 0;
            code = (code << 6) | (next & 0x3F);
        }
        if ((continuation == 2 && code < 0x800) || (continuation == 3 && (code < 0x10000 || code > 0x10FFFF)) ||
            (code >= 0xD800 && code <= 0xDFFF))
            return 0;
        c->p += continuation + 1;
    }
}

/* A number (RFC 8259) of a clearly finite magnitude. Sets whether it is an integer and, when it has at
 * most 18 digits, its value (`fits`). */
static int scan_number(Cursor *c, int *integer, int *fits, int64_t *value)
{
    const unsigned char *p = c->p, *end = c->end;
    int negative = 0;
    if (p < end && *p == '-') {
        negative = 1;
        p++;
    }
    if (p >= end || !is_digit(*p))
        return 0;
    const unsigned char *digits = p;
    if (*p == '0')
        p++;
    else
        while (p < end && is_digit(*p))
            p++;
    Py_ssize_t integer_digits = p - digits;
    *integer = 1;
    if (p < end && *p == '.') {
        *integer = 0;
        const unsigned char *fraction = ++p;
        while (p < end && is_digit(*p))
            p++;
        if (p == fraction || p - fraction > MAX_MAGNITUDE)
            return 0;
    }
    long exponent = 0;
    if (p < end && (*p == 'e' || *p == 'E')) {
        *integer = 0;
        p++;
        int exponent_negative = 0;
        if (p < end && (*p == '+' || *p == '-'))
            exponent_negative = *p++ == '-';
        const unsigned char *exponent_digits = p;
        while (p < end && is_digit(*p)) {
            if (p - exponent_digits >= 4)
                return 0;
            exponent = exponent * 10 + (*p - '0');
            p++;
        }
        if (p == exponent_digits)
            return 0;
        if (exponent_negative)
            exponent = -exponent;
    }
    if (integer_digits + exponent > MAX_MAGNITUDE || exponent < -MAX_MAGNITUDE)
        return 0;
    *fits = *integer && integer_digits <= 18;
    if (*fits) {
        int64_t magnitude = 0;
        for (const unsigned char *d = digits; d < digits + integer_digits; d++)
            magnitude = magnitude * 10 + (*d - '0');
        *value = negative ? -magnitude : magnitude;
    }
    c->p = p;
    return 1;
}

static int scan_literal(Cursor *c, const char *word)
{
    size_t length = strlen(word);
    if ((size_t)(c->end - c->p) < length || memcmp(c->p, word, length) != 0)
        return 0;
    c->p += length;
    return 1;
}

static int scan_value(Cursor *c, int depth);

/* An object or array from its opening bracket. */
static int scan_container(Cursor *c, int depth)
{
    if (depth > MAX_DEPTH)
        return 0;
    unsigned char close = *c->p == '{' ? '}' : ']';
    int object = close == '}';
    c->p++;
    skip_whitespace(c);
    if (c->p < c->end && *c->p == close) {
        c->p++;
        return 1;
    }
    for (;;) {
        if (object) {
            const unsigned char *content;
            Py_ssize_t length;
            int plain;
            if (c->p >= c->end || *c->p != '"' || !scan_string(c, &content, &length, &plain))
                return 0;
            skip_whitespace(c);
            if (c->p >= c->end || *c->p != ':')
                return 0;
            c->p++;
            skip_whitespace(c);
        }
        if (!scan_value(c, depth + 1))
            return 0;
        skip_whitespace(c);
        if (c->p >= c->end)
            return 0;
        if (*c->p == close) {
            c->p++;
            return 1;
        }
        if (*c->p != ',')
            return 0;
        c->p++;
        skip_whitespace(c);
    }
}

static int scan_value(Cursor *c, int depth)
{
    if (c->p >= c->end)
        return 0;
    const unsigned char *content;
    Py_ssize_t length;
    int plain, integer, fits;
    int64_t number;
    switch (*c->p) {
    case '{':
    case '[':
        return scan_container(c, depth);
    case '"':
        return scan_string(c, &content, &length, &plain);
    case 't':
        return scan_literal(c, "true");
    case 'f':
        return scan_literal(c, "false");
    case 'n':
        return scan_literal(c, "null");
    default:
        return scan_number(c, &integer, &fits, &number);
    }
}

static int64_t floor_divide(int64_t numerator, int64_t denominator)
{
    int64_t quotient = numerator / denominator;
    return (numerator % denominator != 0 && (numerator < 0) != (denominator < 0)) ? quotient - 1 : quotient;
}

/* Days from 1970-01-01 to a proleptic Gregorian date (H. Hinnant's `days_from_civil`). */
static int64_t days_from_civil(int64_t year, int month, int day)
{
    year -= month <= 2;
    int64_t era = (year >= 0 ? year : year - 399) / 400;
    int64_t year_of_era = year - era * 400;
    int64_t day_of_year = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1;
    int64_t day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    return era * 146097 + day_of_era - 719468;
}

static int two_digits(const unsigned char *p, int *value)
{
    if (!is_digit(p[0]) || !is_digit(p[1]))
        return 0;
    *value = (p[0] - '0') * 10 + (p[1] - '0');
    return 1;
}

/* `YYYY-MM-DD[T ]HH:MM[:SS[.f{1,6}]][Z|+HH:MM|-HH:MM]`, a real calendar date and time, in years 2 to
 * 9998 (an offset cannot carry it out of Python's range): the epoch microseconds of its UTC hour. Other
 * forms, which `datetime.fromisoformat` may still read, are left to it. */
static int iso_hour(const unsigned char *text, Py_ssize_t length, int64_t *hour)
{
    static const int month_days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (length < 16)
        return 0;
    int century, year_in_century, month, day, hours, minutes, seconds = 0;
    if (!two_digits(text, &century) || !two_digits(text + 2, &year_in_century) || text[4] != '-' ||
        !two_digits(text + 5, &month) || text[7] != '-' || !two_digits(text + 8, &day) ||
        (text[10] != 'T' && text[10] != ' ') || !two_digits(text + 11, &hours) || text[13] != ':' ||
        !two_digits(text + 14, &minutes))
        return 0;
    int year = century * 100 + year_in_century;
    Py_ssize_t at = 16;
    if (at < length && text[at] == ':') {
        if (length - at < 3 || !two_digits(text + at + 1, &seconds))
            return 0;
        at += 3;
        if (at < length && text[at] == '.') {
            Py_ssize_t first = ++at;
            while (at < length && is_digit(text[at]))
                at++;
            if (at == first || at - first > 6)
                return 0;
        }
    }
    int offset_minutes = 0;
    if (at < length && text[at] == 'Z') {
        at++;
    } else if (at < length && (text[at] == '+' || text[at] == '-')) {
        int offset_hours, offset_rest;
        if (length - at != 6 || !two_digits(text + at + 1, &offset_hours) || text[at + 3] != ':' ||
            !two_digits(text + at + 4, &offset_rest) || offset_hours > 23 || offset_rest > 59)
            return 0;
        offset_minutes = (text[at] == '-' ? -1 : 1) * (offset_hours * 60 + offset_rest);
        at += 6;
    }
    if (at != length)
        return 0;
    int leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    if (year < 2 || year > 9998 || month < 1 || month > 12 || day < 1 ||
        day > month_days[month - 1] + (month == 2 && leap) || hours > 23 || minutes > 59 || seconds > 59)
        return 0;
    int64_t epoch_seconds = days_from_civil(year, month, day) * 86400 + hours * 3600 + minutes * 60 + seconds -
                            (int64_t)offset_minutes * 60;
    *hour = floor_divide(epoch_seconds, 3600) * 3600 * 1000000;
    return 1;
}

/* The event time's value, from its first byte: what it says, or FALLBACK. Moves past it when read. */
static Outcome event_time(Cursor *c)
{
    Outcome outcome = {FALLBACK, 0};
    const unsigned char *content;
    Py_ssize_t length;
    int plain, integer, fits;
    int64_t number;
    if (c->p < c->end && *c->p == '"') {
        if (scan_string(c, &content, &length, &plain) && plain && iso_hour(content, length, &outcome.hour))
            outcome.kind = MOMENT;
        return outcome;
    }
    if (c->p < c->end && (*c->p == '-' || is_digit(*c->p))) {
        if (!scan_number(c, &integer, &fits, &number))
            return outcome;
        if (fits && number >= EPOCH_MS_MIN && number <= EPOCH_MS_MAX) {
            outcome.kind = MOMENT;
            outcome.hour = floor_divide(number, MS_PER_HOUR) * MS_PER_HOUR * 1000;
        } else {
            outcome.kind = NOT_READ; /* a float, or milliseconds no datetime holds */
        }
        return outcome;
    }
    if (scan_value(c, 1))
        outcome.kind = NOT_READ; /* null, a boolean, an object or an array */
    return outcome;
}

/* One payload: a JSON object whose last `field` member (as orjson keeps the last of a repeated name)
 * gives the outcome. */
static Outcome payload_hour(const unsigned char *payload, Py_ssize_t size, const char *field, Py_ssize_t field_size)
{
    Outcome fallback = {FALLBACK, 0}, found = {NOT_READ, 0};
    Cursor c = {payload, payload + size};
    skip_whitespace(&c);
    if (c.p >= c.end || *c.p != '{')
        return fallback;
    c.p++;
    skip_whitespace(&c);
    if (c.p < c.end && *c.p == '}') {
        c.p++;
    } else {
        for (;;) {
            const unsigned char *name;
            Py_ssize_t name_size;
            int plain;
            if (c.p >= c.end || *c.p != '"' || !scan_string(&c, &name, &name_size, &plain) || !plain)
                return fallback; /* an escaped name might spell the field */
            skip_whitespace(&c);
            if (c.p >= c.end || *c.p != ':')
                return fallback;
            c.p++;
            skip_whitespace(&c);
            if (name_size == field_size && memcmp(name, field, field_size) == 0) {
                found = event_time(&c);
                if (found.kind == FALLBACK)
                    return fallback;
            } else if (!scan_value(&c, 1)) {
                return fallback;
            }
            skip_whitespace(&c);
            if (c.p >= c.end)
                return fallback;
            if (*c.p == '}') {
                c.p++;
                break;
            }
            if (*c.p != ',')
                return fallback;
            c.p++;
            skip_whitespace(&c);
        }
    }
    skip_whitespace(&c);
    return c.p == c.end ? found : fallback;
}

static PyObject *event_hours(PyObject *Py_UNUSED(module), PyObject *args)
{
    PyObject *values;
    const char *field;
    Py_ssize_t field_size, max_bytes;
    if (!PyArg_ParseTuple(args, "O!y#n:event_hours", &PyList_Type, &values, &field, &field_size, &max_bytes))
        return NULL;
    Py_ssize_t count = PyList_GET_SIZE(values);
    PyObject *kinds = PyBytes_FromStringAndSize(NULL, count);
    PyObject *hours = PyBytes_FromStringAndSize(NULL, count * (Py_ssize_t)sizeof(int64_t));
    if (kinds == NULL || hours == NULL) {
        Py_XDECREF(kinds);
        Py_XDECREF(hours);
        return NULL;
    }
    char *kind_of = PyBytes_AS_STRING(kinds);
    int64_t *hour_of = (int64_t *)PyBytes_AS_STRING(hours);
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *value = PyList_GET_ITEM(values, i);
        Outcome outcome = {NOT_READ, 0};
        if (PyBytes_Check(value)) {
            Py_ssize_t size = PyBytes_GET_SIZE(value);
            if (size <= max_bytes)
                outcome = payload_hour((const unsigned char *)PyBytes_AS_STRING(value), size, field, field_size);
        } else if (value != Py_None) {
            Py_DECREF(kinds);
            Py_DECREF(hours);
            return PyErr_Format(PyExc_TypeError, "payload %zd is %.100s, not bytes or None", i, Py_TYPE(value)->tp_name);
        }
        kind_of[i] = (char)outcome.kind;
        hour_of[i] = outcome.hour;
    }
    return Py_BuildValue("(NN)", kinds, hours);
}

static PyObject *int64_buffer(PyObject *Py_UNUSED(module), PyObject *values)
{
    if (!PyList_Check(values))
        return PyErr_Format(PyExc_TypeError, "int64_buffer takes a list, not %.100s", Py_TYPE(values)->tp_name);
    Py_ssize_t count = PyList_GET_SIZE(values);
    PyObject *buffer = PyBytes_FromStringAndSize(NULL, count * (Py_ssize_t)sizeof(int64_t));
    if (buffer == NULL)
        return NULL;
    int64_t *out = (int64_t *)PyBytes_AS_STRING(buffer);
    for (Py_ssize_t i = 0; i < count; i++) {
        long long value = PyLong_AsLongLong(PyList_GET_ITEM(values, i));
        if (value == -1 && PyErr_Occurred()) {
            Py_DECREF(buffer);
            return NULL;
        }
        out[i] = value;
    }
    return buffer;
}

/* (offsets, data, validity, nulls) of a binary column: int32 offsets when the data fits them, else
 * int64 (a large binary column); a validity bitmap, or None when no value is missing. */
static PyObject *binary_buffers(PyObject *Py_UNUSED(module), PyObject *values)
{
    if (!PyList_Check(values))
        return PyErr_Format(PyExc_TypeError, "binary_buffers takes a list, not %.100s", Py_TYPE(values)->tp_name);
    Py_ssize_t count = PyList_GET_SIZE(values), total = 0, nulls = 0;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *value = PyList_GET_ITEM(values, i);
        if (value == Py_None) {
            nulls++;
        } else if (PyBytes_Check(value)) {
            total += PyBytes_GET_SIZE(value);
        } else {
            return PyErr_Format(PyExc_TypeError, "value %zd is %.100s, not bytes or None", i, Py_TYPE(value)->tp_name);
        }
    }
    int large = total > INT32_MAX;
    Py_ssize_t width = large ? (Py_ssize_t)sizeof(int64_t) : (Py_ssize_t)sizeof(int32_t);
    PyObject *offsets = PyBytes_FromStringAndSize(NULL, (count + 1) * width);
    PyObject *data = PyBytes_FromStringAndSize(NULL, total);
    PyObject *validity = nulls ? PyBytes_FromStringAndSize(NULL, (count + 7) / 8) : Py_NewRef(Py_None);
    if (offsets == NULL || data == NULL || validity == NULL) {
        Py_XDECREF(offsets);
        Py_XDECREF(data);
        Py_XDECREF(validity);
        return NULL;
    }
    char *into = PyBytes_AS_STRING(data);
    unsigned char *bits = nulls ? (unsigned char *)PyBytes_AS_STRING(validity) : NULL;
    if (bits != NULL)
        memset(bits, 0, (count + 7) / 8);
    Py_ssize_t at = 0;
    for (Py_ssize_t i = 0; i < count; i++) {
        if (large)
            ((int64_t *)PyBytes_AS_STRING(offsets))[i] = at;
        else
            ((int32_t *)PyBytes_AS_STRING(offsets))[i] = (int32_t)at;
        PyObject *value = PyList_GET_ITEM(values, i);
        if (value == Py_None)
            continue;
        Py_ssize_t size = PyBytes_GET_SIZE(value);
        memcpy(into + at, PyBytes_AS_STRING(value), size);
        at += size;
        if (bits != NULL)
            bits[i / 8] |= (unsigned char)(1 << (i % 8));
    }
    if (large)
        ((int64_t *)PyBytes_AS_STRING(offsets))[count] = at;
    else
        ((int32_t *)PyBytes_AS_STRING(offsets))[count] = (int32_t)at;
    return Py_BuildValue("(NNNn)", offsets, data, validity, nulls);
}

/* A topic partition of a batch and the lowest and highest offset seen there. */
typedef struct {
    PyObject *topic;
    long long partition, first, last;
} Span;

static int is_span_of(const Span *span, PyObject *topic, long long partition)
{
    return span->partition == partition && (span->topic == topic || PyUnicode_Compare(span->topic, topic) == 0);
}

/* {(topic, partition): (first offset, last offset)} of a batch's columns, in one pass. A consumer
 * returns the messages of a partition in runs, so the span of the previous record is tried first. */
static PyObject *offset_spans(PyObject *Py_UNUSED(module), PyObject *args)
{
    PyObject *topics, *partitions, *offsets;
    if (!PyArg_ParseTuple(args, "O!O!O!:offset_spans", &PyList_Type, &topics, &PyList_Type, &partitions, &PyList_Type,
                          &offsets))
        return NULL;
    Py_ssize_t count = PyList_GET_SIZE(topics);
    if (PyList_GET_SIZE(partitions) != count || PyList_GET_SIZE(offsets) != count)
        return PyErr_Format(PyExc_ValueError, "offset_spans takes topics, partitions and offsets of one length");
    Span *spans = NULL;
    Py_ssize_t used = 0, allocated = 0, previous = -1;
    PyObject *result = NULL;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *topic = PyList_GET_ITEM(topics, i);
        if (!PyUnicode_Check(topic)) {
            PyErr_Format(PyExc_TypeError, "topic %zd is %.100s, not str", i, Py_TYPE(topic)->tp_name);
            goto done;
        }
        long long partition = PyLong_AsLongLong(PyList_GET_ITEM(partitions, i));
        long long offset = PyLong_AsLongLong(PyList_GET_ITEM(offsets, i));
        if (PyErr_Occurred())
            goto done;
        Py_ssize_t at = previous;
        if (at < 0 || !is_span_of(&spans[at], topic, partition))
            for (at = 0; at < used && !is_span_of(&spans[at], topic, partition); at++)
                ;
        if (at == used) {
            if (used == allocated) {
                allocated = allocated ? 2 * allocated : 16;
                Span *grown = PyMem_Realloc(spans, allocated * sizeof(Span));
                if (grown == NULL) {
                    PyErr_NoMemory();
                    goto done;
                }
                spans = grown;
            }
            spans[used++] = (Span){topic, partition, offset, offset};
        } else if (offset < spans[at].first) {
            spans[at].first = offset;
        } else if (offset > spans[at].last) {
            spans[at].last = offset;
        }
        previous = at;
    }
    result = PyDict_New();
    for (Py_ssize_t at = 0; result != NULL && at < used; at++) {
        PyObject *key = Py_BuildValue("(OL)", spans[at].topic, spans[at].partition);
        PyObject *span = Py_BuildValue("(LL)", spans[at].first, spans[at].last);
        if (key == NULL || span == NULL || PyDict_SetItem(result, key, span) < 0)
            Py_CLEAR(result);
        Py_XDECREF(key);
        Py_XDECREF(span);
    }
done:
    PyMem_Free(spans);
    return result;
}

/* The fields of confluent-kafka's `Message` (src/confluent_kafka/src/confluent_kafka.h of 2.16.1),
 * read directly. `message_columns` answers None, and the caller takes the accessor methods, unless the
 * type has this size and the fields of a batch's first message are what its methods return. */
typedef struct {
    PyObject_HEAD
    PyObject *topic;
    PyObject *value;
    PyObject *key;
    PyObject *headers;
    void *c_headers; /* rd_kafka_headers_t: made into `headers` by the `headers` method */
    PyObject *error;
    int32_t partition;
    int64_t offset;
    int32_t leader_epoch;
    int64_t timestamp;
    int tstype;
    int64_t latency;
    int16_t delivery_count;
} KafkaMessage;

/* Whether `topic` names the same topic as `shared` (text set by a program may be any object: never shared). */
static int same_topic(PyObject *topic, PyObject *shared)
{
    return topic != NULL && shared != NULL &&
           (topic == shared || (PyUnicode_CheckExact(topic) && PyUnicode_CheckExact(shared) &&
                                PyUnicode_Compare(topic, shared) == 0));
}

/* A message's object field as its accessor answers it, None where unset (`or_none`: borrowed;
 * `field_or_none`: a new reference). */
static PyObject *or_none(PyObject *field) { return field != NULL ? field : Py_None; }

static PyObject *field_or_none(PyObject *field) { return Py_NewRef(or_none(field)); }

static PyObject *message_partition(const KafkaMessage *m)
{
    return m->partition != -1 ? PyLong_FromLong(m->partition) : Py_NewRef(Py_None);
}

static PyObject *message_offset(const KafkaMessage *m)
{
    return m->offset >= 0 ? PyLong_FromLongLong(m->offset) : Py_NewRef(Py_None);
}

/* Whether `value` equals what `message.<method>()` returns (the same object for the object fields). */
static int method_agrees(PyObject *message, const char *method, PyObject *value, int same_object)
{
    PyObject *answered = PyObject_CallMethod(message, method, NULL);
    if (answered == NULL) {
        PyErr_Clear();
        return 0;
    }
    int agrees = same_object ? answered == value : PyObject_RichCompareBool(answered, value, Py_EQ) == 1;
    PyErr_Clear();
    Py_DECREF(answered);
    return agrees;
}

/* Whether `message` is laid out as `KafkaMessage` says: its type's size, and each field read directly
 * equal to its accessor's answer. */
static int laid_out_as_known(PyObject *message)
{
    PyTypeObject *type = Py_TYPE(message);
    if (strcmp(type->tp_name, "confluent_kafka.cimpl.Message") != 0 ||
        type->tp_basicsize != (Py_ssize_t)sizeof(KafkaMessage))
        return 0;
    const KafkaMessage *m = (const KafkaMessage *)message;
    PyObject *partition = message_partition(m), *offset = message_offset(m);
    PyObject *timestamp = Py_BuildValue("(iL)", m->tstype, (long long)m->timestamp);
    int agrees = partition != NULL && offset != NULL && timestamp != NULL &&
                 method_agrees(message, "topic", or_none(m->topic), 1) &&
                 method_agrees(message, "value", or_none(m->value), 1) &&
                 method_agrees(message, "key", or_none(m->key), 1) &&
                 method_agrees(message, "error", or_none(m->error), 1) &&
                 method_agrees(message, "partition", partition, 0) && method_agrees(message, "offset", offset, 0) &&
                 method_agrees(message, "timestamp", timestamp, 0);
    Py_XDECREF(partition);
    Py_XDECREF(offset);
    Py_XDECREF(timestamp);
    PyErr_Clear();
    return agrees;
}

static PyObject *message_columns(PyObject *Py_UNUSED(module), PyObject *messages)
{
    if (!PyList_Check(messages))
        return PyErr_Format(PyExc_TypeError, "message_columns takes a list, not %.100s", Py_TYPE(messages)->tp_name);
    Py_ssize_t count = PyList_GET_SIZE(messages);
    if (count == 0 || !laid_out_as_known(PyList_GET_ITEM(messages, 0)))
        Py_RETURN_NONE;
    PyTypeObject *type = Py_TYPE(PyList_GET_ITEM(messages, 0));
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *message = PyList_GET_ITEM(messages, i);
        if (Py_TYPE(message) != type)
            Py_RETURN_NONE;
        PyObject *error = ((const KafkaMessage *)message)->error;
        if (error != NULL && error != Py_None)
            return PyLong_FromSsize_t(i);
    }
    PyObject *columns[7];
    int built = 1;
    for (int c = 0; c < 7; c++) {
        columns[c] = PyList_New(count);
        built = built && columns[c] != NULL;
    }
    PyObject *topic = NULL; /* the previous message's topic, shared by the messages after it that name it too */
    for (Py_ssize_t i = 0; built && i < count; i++) {
        PyObject *message = PyList_GET_ITEM(messages, i);
        const KafkaMessage *m = (const KafkaMessage *)message;
        if (!same_topic(m->topic, topic))
            topic = m->topic;
        PyObject *headers = m->headers == NULL && m->c_headers == NULL
                                ? Py_NewRef(Py_None)
                                : PyObject_CallMethod(message, "headers", NULL);
        PyObject *fields[7] = {field_or_none(topic), message_partition(m), message_offset(m),
                               PyLong_FromLongLong(m->timestamp), field_or_none(m->key), field_or_none(m->value),
                               headers};
        for (int c = 0; c < 7; c++) {
            built = built && fields[c] != NULL;
            PyList_SET_ITEM(columns[c], i, fields[c] != NULL ? fields[c] : Py_NewRef(Py_None));
        }
    }
    if (!built) {
        for (int c = 0; c < 7; c++)
            Py_XDECREF(columns[c]);
        return NULL;
    }
    return Py_BuildValue("(NNNNNNN)", columns[0], columns[1], columns[2], columns[3], columns[4], columns[5],
                         columns[6]);
}

static PyMethodDef methods[] = {
    {"int64_buffer", int64_buffer, METH_O, "int64_buffer(values) -> the native int64 buffer of a list of integers."},
    {"binary_buffers", binary_buffers, METH_O,
     "binary_buffers(values) -> (offsets, data, validity, nulls) of a list of bytes and None: int32 offsets "
     "unless the data needs int64, a validity bitmap or None."},
    {"event_hours", event_hours, METH_VARARGS,
     "event_hours(values, field, max_bytes) -> (kinds, hours): per payload a kind byte (NOT_READ, MOMENT, "
     "FALLBACK) and the native int64 epoch microseconds of its event hour (0 unless MOMENT)."},
    {"message_columns", message_columns, METH_O,
     "message_columns(messages) -> (topics, partitions, offsets, timestamps, keys, values, headers) of a list of "
     "confluent-kafka messages; the index of the first message with an error; or None when the messages are "
     "not laid out as this module knows them (then take their accessor methods)."},
    {"offset_spans", offset_spans, METH_VARARGS,
     "offset_spans(topics, partitions, offsets) -> {(topic, partition): (first offset, last offset)}."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_native", NULL, -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__native(void)
{
    for (int b = 0x20; b < 0x80; b++)
        plain_byte[b] = b != '"' && b != '\\';
    PyObject *created = PyModule_Create(&module);
    if (created == NULL)
        return NULL;
    if (PyModule_AddIntConstant(created, "NOT_READ", NOT_READ) < 0 ||
        PyModule_AddIntConstant(created, "MOMENT", MOMENT) < 0 ||
        PyModule_AddIntConstant(created, "FALLBACK", FALLBACK) < 0) {
        Py_DECREF(created);
        return NULL;
    }
    return created;
}
