// PHP that runs code it first decodes: eval/assert over base64, gzip, rot13 or hex decoders.
// Nothing legitimate in WordPress core, themes or plugins evaluates decoded text.
rule php_eval_decoded
{
    meta:
        severity = "critical"
        description = "PHP runs code it decodes first (eval/assert over a decoder): an obfuscated backdoor"
        scope = "all"
    strings:
        $chain = /(eval|assert)\s*\(\s*@?\s*(base64_decode|gzinflate|gzuncompress|gzdecode|str_rot13|strrev|hex2bin|convert_uudecode)\s*\(/ nocase
        $create = /create_function\s*\([^)]{0,80}(base64_decode|gzinflate|str_rot13)\s*\(/ nocase
        $preg_e = /preg_replace\s*\(\s*['"]\/[^'"\n]{1,200}\/[a-df-z]*e[a-df-z]*['"]\s*,/
    condition:
        any of them
}
