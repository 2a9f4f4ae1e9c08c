"""The import's URL rewrite keeps PHP's serialize() format intact: PHP itself is the judge.

Each value is serialized by PHP, rewritten by `serialized.UrlRewrite`, and the
result compared byte for byte with what PHP serializes after replacing the
URL inside the unserialized structure (values only, keys kept), and checked
to `unserialize()` again. Needs Debian's php-cli (scripts/setup.sh installs it).
"""

from __future__ import annotations

import json
import subprocess

import pytest
from carestack_agent.serialized import Counts, UrlRewrite, rewrite_value

OLD, NEW = "http://old.example", "https://www.bakery.example"

# PHP: reads {"expr": PHP expression, "old": ..., "new": ...} and prints JSON: the value serialized, and the value
# with every string (never a key) replaced in the structure, serialized: the ground truth.
PHP_TRUTH = r"""
$in = json_decode(stream_get_contents(STDIN), true);
class Foo { private $url; protected $note; public $n = 3;
  function __construct($u, $t) { $this->url = $u; $this->note = $t; } function url() { return $this->url; } }
function swap($v, $from, $to) {
  if (is_string($v)) {
    $inner = @unserialize($v);
    if ($inner !== false || $v === 'b:0;') { return serialize(swap($inner, $from, $to)); }
    return str_replace($from, $to, $v);
  }
  if (is_array($v)) { foreach ($v as $k => $x) { $v[$k] = swap($x, $from, $to); } return $v; }
  if (is_object($v)) {
    $r = new ReflectionObject($v);
    foreach ($r->getProperties() as $p) {
      $p->setAccessible(true); $p->setValue($v, swap($p->getValue($v), $from, $to));
    }
    return $v;
  }
  return $v;
}
$value = eval('return ' . $in['expr'] . ';');
$from = [$in['old'], str_replace('/', '\/', $in['old'])];
$to = [$in['new'], str_replace('/', '\/', $in['new'])];
echo json_encode(['serialized' => base64_encode(serialize($value)),
                  'expected' => base64_encode(serialize(swap($value, $from, $to)))]);
"""

PHP_CHECK = r"""
class Foo { private $url; protected $note; public $n = 3; function url() { return $this->url; } }
$v = unserialize(stream_get_contents(STDIN));
if ($v === false) { fwrite(STDERR, "unserialize failed\n"); exit(1); }
echo json_encode(is_object($v) ? ['url' => $v->url()] : $v);
"""


def php(code: str, stdin: bytes) -> bytes:
    done = subprocess.run(["php", "-r", code], input=stdin, capture_output=True, check=False, timeout=30)
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout


def truth(expr: str) -> tuple[bytes, bytes]:
    import base64

    out = json.loads(php(PHP_TRUTH, json.dumps({"expr": expr, "old": OLD, "new": NEW}).encode()))
    return base64.b64decode(out["serialized"]), base64.b64decode(out["expected"])


WIDGET_TEXT = """[2 => ['title' => 'Find us', 'text' => '<a href="http://old.example/contact/">Contact</a> or
<img src="http://old.example/wp-content/uploads/map.png">', 'filter' => true, 'visual' => true],
'_multiwidget' => 1]"""
THEME_MODS = """['custom_logo' => 12, 'header_image' => 'http://old.example/wp-content/uploads/header.jpg',
'header_image_data' => (object) ['url' => 'http://old.example/wp-content/uploads/header.jpg',
  'thumbnail_url' => 'http://old.example/wp-content/uploads/header-150x150.jpg', 'width' => 1200, 'height' => 280],
'nav_menu_locations' => ['primary' => 3], 'background_color' => 'ffffff', 'ratio' => 1.5, 'none' => null]"""
NESTED = """['a' => ['b' => ['c' => ['d' => ['e' => 'http://old.example/deep', 'f' => [1, 2, 'http://old.example']]]]],
'http://old.example/as-a-key' => 'value', 7 => 'http://old.example/seven']"""
MULTIBYTE = """['title' => 'Bäckerei Korn \u2013 Brötchen', 'link' => 'http://old.example/brötchen/ünd-mehr/',
'emoji' => '🥐 http://old.example/croissant 🥖', 'cjk' => 'パン http://old.example/パン']"""
DOUBLE = """['outer' => serialize(['inner' => 'http://old.example/inner', 'list' => ['http://old.example/x']]),
'json' => json_encode(['url' => 'http://old.example/json/a'])]"""
OBJECT = """new Foo('http://old.example/private', 'protected http://old.example/note')"""


@pytest.mark.parametrize(
    "expr",
    [WIDGET_TEXT, THEME_MODS, NESTED, MULTIBYTE, DOUBLE, OBJECT],
    ids=["widget_text", "theme_mods", "nested_arrays", "multibyte_utf8", "serialized_and_json_inside", "object"],
)
def test_a_serialized_value_is_rewritten_exactly_as_php_would_write_it(expr: str) -> None:
    serialized, expected = truth(expr)
    assert OLD.encode() in serialized
    rw = UrlRewrite(OLD, NEW)

    rewritten = rw.value(serialized)

    assert rewritten == expected
    php(PHP_CHECK, rewritten)  # unserialize() succeeds
    # every value changed; keys are kept
    assert OLD.encode() not in rewritten.replace(b'"http://old.example/as-a-key"', b"")
    assert rw.counts.unparsable == 0 and rw.counts.serialized >= 1


def test_a_naive_replace_breaks_what_the_rewrite_keeps() -> None:
    serialized, _ = truth(WIDGET_TEXT)
    naive = serialized.replace(OLD.encode(), NEW.encode())
    done = subprocess.run(["php", "-r", PHP_CHECK], input=naive, capture_output=True, check=False)
    assert done.returncode == 1 and b"unserialize failed" in done.stderr  # the failure the rewrite exists for
    php(PHP_CHECK, UrlRewrite(OLD, NEW).value(serialized))


def test_the_object_keeps_its_private_property_readable_after_the_rewrite() -> None:
    serialized, _ = truth(OBJECT)
    out = json.loads(php(PHP_CHECK, UrlRewrite(OLD, NEW).value(serialized)))
    assert out == {"url": f"{NEW}/private"}


def test_json_escaped_urls_in_post_content_are_rewritten() -> None:
    content = (
        b'<!-- wp:cover {"url":"http:\\/\\/old.example\\/wp-content\\/uploads\\/a.jpg","id":5} -->'
        b'<a href="http://old.example/shop/">Shop</a> https://old.example/secure'
    )
    out = UrlRewrite(OLD, NEW).value(content)
    assert out == (
        b'<!-- wp:cover {"url":"https:\\/\\/www.bakery.example\\/wp-content\\/uploads\\/a.jpg","id":5} -->'
        b'<a href="https://www.bakery.example/shop/">Shop</a> https://www.bakery.example/secure'
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (b"http://old.example.org/page", b"http://old.example.org/page"),
        (b"http://old.example-shop.com", b"http://old.example-shop.com"),
        (b"http://old.examples", b"http://old.examples"),
        (b"see http://old.example.", b"see https://www.bakery.example."),
        (b"HTTP://OLD.Example/Case", b"https://www.bakery.example/Case"),
        (b"http://old.example:8080/x", b"https://www.bakery.example:8080/x"),
        (b"mailto:info@old.example", b"mailto:info@old.example"),
    ],
)
def test_only_the_old_url_itself_is_replaced(text: bytes, expected: bytes) -> None:
    assert UrlRewrite(OLD, NEW).value(text) == expected


def test_a_scheme_change_alone_rewrites_http_and_leaves_https() -> None:
    rw = UrlRewrite("http://www.bakery.example", "https://www.bakery.example/")
    assert rw.changes_anything
    assert rw.value(b"http://www.bakery.example/a https://www.bakery.example/b") == (
        b"https://www.bakery.example/a https://www.bakery.example/b"
    )
    same = UrlRewrite("https://www.bakery.example", "https://www.bakery.example")  # links the old site left on http
    assert same.value(b"http://www.bakery.example/x https://www.bakery.example/y") == (
        b"https://www.bakery.example/x https://www.bakery.example/y"
    )


def test_a_serialized_value_that_does_not_parse_is_counted_and_replaced_as_text() -> None:
    rw = UrlRewrite(OLD, NEW)
    broken = b'a:1:{s:3:"url";s:99:"http://old.example/x";}'  # its length was wrong before the import
    assert rw.value(broken) == b'a:1:{s:3:"url";s:99:"https://www.bakery.example/x";}'
    assert rw.counts.unparsable == 1 and rw.counts.serialized == 0


def test_custom_serialized_data_gets_its_length_recomputed() -> None:
    inner = b'a:1:{i:0;s:20:"http://old.example/c";}'
    value = b'C:11:"ArrayObject":%d:{%s}' % (len(inner), inner)
    out = UrlRewrite(OLD, NEW).value(value)
    new_inner = b'a:1:{i:0;s:28:"https://www.bakery.example/c";}'
    assert out == b'C:11:"ArrayObject":%d:{%s}' % (len(new_inner), new_inner)


def test_scalars_and_references_pass_through_untouched() -> None:
    value = b'a:6:{i:0;i:-5;i:1;d:0.1;i:2;b:1;i:3;N;i:4;d:-INF;i:5;s:18:"http://old.example";}'
    counts = Counts()
    out = rewrite_value(value, UrlRewrite(OLD, NEW), counts, 0)
    assert out == b'a:6:{i:0;i:-5;i:1;d:0.1;i:2;b:1;i:3;N;i:4;d:-INF;i:5;s:26:"https://www.bakery.example";}'
    php(PHP_CHECK, out)


def test_bad_urls_are_refused_by_name() -> None:
    with pytest.raises(ValueError, match="old URL: must be http"):
        UrlRewrite("old.example", NEW)
    with pytest.raises(ValueError, match="new URL: must be http"):
        UrlRewrite(OLD, "ftp://x.example")
