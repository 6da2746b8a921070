BvariableJxa¬6Ci×1Cl¦CŽ›ÿBÓ&*C©€(C H2CQsµB,•OC/CCOìDCÝIeC‰†1C´¤	CõœçBoöBÏ¤óBÀC€±#Câ‡4CYúCY´(CsÑBœÏ]CR"CúÏC{3C‹
Ch0Cû §B