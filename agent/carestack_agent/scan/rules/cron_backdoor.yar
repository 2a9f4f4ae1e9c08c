// Cron backdoors: code that installs crontab entries, and crontab lines that fetch and run a script.
rule cron_backdoor
{
    meta:
        severity = "critical"
        description = "code installs a cron job or fetches and runs a remote script"
        scope = "all"
    strings:
        $php_crontab = /(system|exec|shell_exec|passthru|popen|proc_open)\s*\([^;]{0,200}crontab/ nocase
        $fetch_run = /(curl|wget)[ \t][^\n|]{0,200}\|[ \t]*(ba|da|z)?sh\b/ nocase
    condition:
        any of them
}
