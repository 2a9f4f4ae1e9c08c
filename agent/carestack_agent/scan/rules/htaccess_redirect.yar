// .htaccess rules that send visitors elsewhere or make the server run more PHP than it should.
rule htaccess_redirect_absolute
{
    meta:
        severity = "high"
        description = ".htaccess redirects visitors to another host"
        scope = "htaccess"
    strings:
        $redirect = /(RewriteRule|RedirectMatch|RedirectPermanent|RedirectTemp|Redirect|ErrorDocument)[ \t][^\n]{0,300}https?:\/\/[A-Za-z0-9.-]+/ nocase
    condition:
        $redirect
}

rule htaccess_php_injection
{
    meta:
        severity = "critical"
        description = ".htaccess or .user.ini makes PHP load an extra file or run images as PHP"
        scope = "htaccess"
    strings:
        $prepend = /(php_value[ \t]+)?auto_(prepend|append)_file[ \t]*=?[ \t]*["']?[^\s"']+/ nocase
        $handler = /(AddHandler|AddType|SetHandler)[ \t]+[^\n]{0,80}(php|x-httpd)[^\n]{0,80}\.(jpe?g|png|gif|ico|txt)/ nocase
    condition:
        any of them
}
