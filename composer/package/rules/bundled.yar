// vcomp's bundled YARA rules (composer/package/secrets.py): things no package of an image should ship.
// A repository adds its own rules with policy.yara-rules; external scanners stay on the scanner hook.

rule eicar_test_file
{
    meta:
        description = "the EICAR anti-virus test file"
    strings:
        $eicar = "X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
    condition:
        $eicar at 0
}

rule cryptominer_pool
{
    meta:
        description = "a cryptocurrency miner's pool address (stratum protocol) and a miner's options"
    strings:
        $stratum = "stratum+tcp://" ascii
        $stratum_ssl = "stratum+ssl://" ascii
        $opt1 = "--donate-level" ascii
        $opt2 = "randomx" ascii nocase
    condition:
        any of ($stratum*) and any of ($opt*)
}

rule shell_reverse_connect
{
    meta:
        description = "a script that opens an interactive shell over /dev/tcp (a reverse shell)"
    strings:
        $a = /(ba)?sh -i >& ?\/dev\/tcp\/[0-9.]+\/[0-9]+/
        $b = /exec [0-9]+<>\/dev\/tcp\/[0-9.]+\/[0-9]+/
    condition:
        filesize < 1MB and any of them
}
