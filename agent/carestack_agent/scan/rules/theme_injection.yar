// Script or iframe injections in theme files: hidden iframes, scripts from a bare IP address,
// script blocks that decode and write more script.
rule theme_injected_script
{
    meta:
        severity = "high"
        description = "a theme file carries an injected script or a hidden iframe"
        scope = "themes"
    strings:
        $iframe_hidden = /<iframe[^>]{0,300}(\swidth\s*=\s*["']?0["'\s>]|\sheight\s*=\s*["']?0["'\s>]|display\s*:\s*none|visibility\s*:\s*hidden)/ nocase
        $script_ip = /<script[^>]{0,200}src\s*=\s*["']?(https?:)?\/\/[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}/ nocase
        $script_decode = /<script[^>]{0,100}>[^<]{0,400}(document\.write\s*\(\s*(unescape|atob)|eval\s*\(\s*(atob|unescape|String\.fromCharCode))/ nocase
    condition:
        any of them
}
