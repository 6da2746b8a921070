BvariableJ Глю=т╗A>Г╟,©█╥│╬З
?T}W©QKе╬┴└р?