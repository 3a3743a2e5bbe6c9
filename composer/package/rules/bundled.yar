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
        // hex, so that this file (which vpk ships inside the composer package) does not match itself
        $stratum = { 73 74 72 61 74 75 6d 2b 74 63 70 3a 2f 2f }        // the stratum protocol over TCP
        $stratum_ssl = { 73 74 72 61 74 75 6d 2b 73 73 6c 3a 2f 2f }    // ... over TLS
        $opt1 = { 2d 2d 64 6f 6e 61 74 65 2d 6c 65 76 65 6c }           // xmrig's donate-level option
        $opt2 = /[Rr][Aa][Nn][Dd][Oo][Mm][Xx]/                          // the RandomX algorithm, any case
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
