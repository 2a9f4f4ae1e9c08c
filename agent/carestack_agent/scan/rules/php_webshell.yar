// Web shells: command or code execution fed straight from the request.
rule php_exec_from_request
{
    meta:
        severity = "critical"
        description = "PHP runs commands or code taken from the request: a web shell"
        scope = "all"
    strings:
        $exec = /(system|exec|shell_exec|passthru|popen|proc_open|pcntl_exec|eval|assert)\s*\(\s*@?\s*(stripslashes\s*\(\s*|base64_decode\s*\(\s*|trim\s*\(\s*)?\$_(GET|POST|REQUEST|COOKIE|SERVER|FILES)\s*\[/ nocase
        $varfunc = /\$_(GET|POST|REQUEST|COOKIE)\s*\[[^\]]{1,40}\]\s*\(\s*\$_(GET|POST|REQUEST|COOKIE)/ nocase
        $backtick = /(=|echo|print|return)\s*`[^`\n]{0,40}\$_(GET|POST|REQUEST|COOKIE)\s*\[/
    condition:
        any of them
}
